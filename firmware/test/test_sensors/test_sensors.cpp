#include "fakes/doctest.h"
#include "ferry/sensors.h"

TEST_SUITE("sensors") {
  TEST_CASE("the pot filter starts at the first sample and converges on a step") {
    ferry::PotFilter f(3);
    CHECK(f.add(1000) == 1000);
    uint16_t v = 0;
    for (int i = 0; i < 100; ++i) v = f.add(3000);
    CHECK(v >= 2990);
    CHECK(v <= 3000);
    for (int i = 0; i < 100; ++i) v = f.add(0);
    CHECK(v <= 10);
  }

  TEST_CASE("the pot filter damps single-sample noise") {
    ferry::PotFilter f(3);
    f.add(2000);
    CHECK(f.add(4095) < 2300);
    ferry::PotFilter g(3);
    g.add(4095);
    for (int i = 0; i < 200; ++i) g.add(4095);
    CHECK(g.value() == 4095);
  }

  TEST_CASE("the debouncer ignores bounces shorter than the stable time") {
    ferry::Debouncer d(30);
    CHECK_FALSE(d.add(false, 0));
    CHECK_FALSE(d.add(true, 10));
    CHECK_FALSE(d.add(false, 15));
    CHECK_FALSE(d.add(true, 20));
    CHECK_FALSE(d.add(true, 45));
    CHECK(d.add(true, 50));
    CHECK(d.state());
    CHECK_FALSE(d.add(true, 500));
    CHECK_FALSE(d.add(false, 510));
    CHECK(d.add(false, 540));
    CHECK_FALSE(d.state());
  }

  TEST_CASE("emits on switch change, on pot movement beyond the deadband, and as a heartbeat") {
    ferry::ReadingSchedule s(10000, 20);
    CHECK(s.due(0, 100, false));
    s.emitted(0, 100, false);
    CHECK_FALSE(s.due(100, 115, false));
    CHECK(s.due(100, 121, false));
    CHECK(s.due(100, 79, false));
    CHECK(s.due(100, 100, true));
    CHECK_FALSE(s.due(9999, 100, false));
    CHECK(s.due(10000, 100, false));
  }
}
