#include <cstdint>

#include "fakes/doctest.h"
#include "fakes/fakes.h"
#include "ferry/backoff.h"

TEST_SUITE("backoff") {
  TEST_CASE("full jitter stays within [0, min(cap, base * 2^attempt)]") {
    CHECK(ferry::backoff_delay_ms(0, 500, 60000, 0) == 0);
    CHECK(ferry::backoff_delay_ms(0, 500, 60000, UINT32_MAX) <= 500);
    CHECK(ferry::backoff_delay_ms(0, 500, 60000, 500) == 500);
    CHECK(ferry::backoff_delay_ms(3, 500, 60000, 4000) == 4000);
    CHECK(ferry::backoff_delay_ms(3, 500, 60000, 4001) == 0);  // 4001 % 4001
    for (uint32_t attempt : {7u, 30u, 31u, 32u, 64u, UINT32_MAX}) {
      CHECK(ferry::backoff_delay_ms(attempt, 500, 60000, UINT32_MAX) <= 60000);
      CHECK(ferry::backoff_delay_ms(attempt, 500, 60000, 60000) == 60000);
    }
  }

  TEST_CASE("draws spread over the whole window") {
    uint32_t lo = UINT32_MAX, hi = 0;
    for (uint32_t r = 0; r < 100000; r += 7) {
      uint32_t d = ferry::backoff_delay_ms(2, 1000, 60000, r * 2654435761u);
      lo = d < lo ? d : lo;
      hi = d > hi ? d : hi;
    }
    CHECK(lo < 100);
    CHECK(hi > 3900);
    CHECK(hi <= 4000);
  }

  TEST_CASE("waits the chosen delay and grows it after each failure") {
    fakes::ScriptedRandom rng;  // always UINT32_MAX: the draw modulo the window
    ferry::Reconnector r(1000, 8000, 30000);
    CHECK(r.due(0));
    rng.values = {1000};
    CHECK(r.failed(0, rng) == 1000);
    CHECK_FALSE(r.due(999));
    CHECK(r.due(1000));
    rng.values = {2000};
    CHECK(r.failed(1000, rng) == 2000);
    rng.values = {4000};
    CHECK(r.failed(3000, rng) == 4000);
    rng.values = {8000};
    CHECK(r.failed(7000, rng) == 8000);
    rng.values = {8000};
    CHECK(r.failed(15000, rng) == 8000);  // capped
    CHECK(r.attempt() == 5);
  }

  TEST_CASE("resets only after a connection that stayed up long enough") {
    fakes::ScriptedRandom rng;
    ferry::Reconnector r(1000, 60000, 30000);
    for (int i = 0; i < 4; ++i) r.failed(0, rng);
    r.connected(100000);
    CHECK(r.due(100000));
    r.disconnected(105000, rng);  // flapped after 5 s: keep backing off
    CHECK(r.attempt() == 5);
    r.connected(200000);
    rng.values = {1000};
    CHECK(r.disconnected(240000, rng) == 1000);  // stable for 40 s: start over
    CHECK(r.attempt() == 1);
  }

  TEST_CASE("handles millis() wrap-around") {
    fakes::ScriptedRandom rng;
    rng.values = {500};
    ferry::Reconnector r(1000, 60000, 30000);
    r.failed(UINT32_MAX - 100, rng);
    CHECK_FALSE(r.due(UINT32_MAX));
    CHECK_FALSE(r.due(398));
    CHECK(r.due(399));
  }
}
