#include <string>

#include "fakes/doctest.h"
#include "fakes/fakes.h"
#include "ferry/json.h"
#include "ferry/ring_buffer.h"
#include "ferry/telemetry.h"
#include "ferry/uplink.h"

namespace {
ferry::Reading reading(uint32_t seq) {
  ferry::Reading r;
  r.seq = seq;
  r.boot = 7;
  r.pot = uint16_t(seq % 4096);
  r.sw = seq & 1;
  return r;
}
}  // namespace

TEST_SUITE("telemetry") {
  TEST_CASE("encodes the telemetry payload of the topic contract") {
    ferry::Reading r;
    r.seq = 42;
    r.boot = 7;
    r.pot = 2048;
    r.sw = 1;
    CHECK(ferry::encode_telemetry(r) == R"({"seq":42,"boot":7,"pot":2048,"switch":1})");
    r.has_ts = true;
    r.ts_ms = 1767225600123ULL;
    r.has_led = true;
    r.led = 80;
    CHECK(ferry::encode_telemetry(r) == R"({"seq":42,"boot":7,"ts":1767225600123,"pot":2048,"switch":1,"led":80})");
  }

  TEST_CASE("clamps out-of-range pot and led values instead of sending them") {
    ferry::Reading r;
    r.pot = 65535;
    r.has_led = true;
    r.led = 200;
    r.seq = 4294967295u;
    r.boot = 4294967295u;
    std::string s = ferry::encode_telemetry(r);
    ferry::json::Value v;
    REQUIRE(ferry::json::parse(s, v));
    uint64_t n = 0;
    CHECK((v.get("pot")->as_uint(n) && n == 4095));
    CHECK((v.get("led")->as_uint(n) && n == 100));
    CHECK((v.get("seq")->as_uint(n) && n == 4294967295u));
  }

  TEST_CASE("encodes led state and ota status with escaped strings") {
    CHECK(ferry::encode_led_state("c-1", 80) == R"({"cmd":"c-1","brightness":80})");
    CHECK(ferry::encode_led_state("a\"b", 120) == R"({"cmd":"a\"b","brightness":100})");
    CHECK(ferry::encode_ota_status("d1", "failed", "1.4.0", "sha256") ==
          R"({"deployment":"d1","state":"failed","version":"1.4.0","reason":"sha256"})");
    CHECK(ferry::encode_ota_status("d1", "downloading", "1.4.0", "") ==
          R"({"deployment":"d1","state":"downloading","version":"1.4.0"})");
  }

  TEST_CASE("builds the node's topics under sensors/<id>/") {
    ferry::Topics t("node-1");
    CHECK(t.telemetry == "sensors/node-1/telemetry");
    CHECK(t.led_set == "sensors/node-1/led/set");
    CHECK(t.led_state == "sensors/node-1/led/state");
    CHECK(t.status == "sensors/node-1/status");
    CHECK(t.ota_status == "sensors/node-1/ota/status");
  }

  TEST_CASE("counts boots in storage, starting at 1") {
    fakes::FakeStorage nvs;
    CHECK(ferry::next_boot_count(nvs) == 1);
    CHECK(ferry::next_boot_count(nvs) == 2);
    nvs.kv["boot"] = "4294967295";
    CHECK(ferry::next_boot_count(nvs) == 1);
    nvs.kv["boot"] = "junk";
    CHECK(ferry::next_boot_count(nvs) == 1);
  }
}

TEST_SUITE("ring_buffer") {
  TEST_CASE("keeps FIFO order") {
    ferry::RingBuffer<int> rb(3);
    CHECK(rb.empty());
    rb.push(1);
    rb.push(2);
    CHECK(rb.front() == 1);
    rb.pop();
    rb.push(3);
    rb.push(4);
    CHECK(rb.size() == 3);
    CHECK(rb.front() == 2);
    CHECK(rb.dropped() == 0);
  }

  TEST_CASE("drops the oldest entry when full and counts every drop") {
    ferry::RingBuffer<int> rb(3);
    for (int i = 1; i <= 3; ++i) CHECK_FALSE(rb.push(i));
    CHECK(rb.push(4));
    CHECK(rb.push(5));
    CHECK(rb.size() == 3);
    CHECK(rb.dropped() == 2);
    int expect = 3;
    while (!rb.empty()) {
      CHECK(rb.front() == expect++);
      rb.pop();
    }
    rb.pop();  // popping an empty buffer is harmless
    CHECK(rb.size() == 0);
  }
}

TEST_SUITE("uplink") {
  TEST_CASE("keeps readings while offline and delivers them in order after reconnect") {
    fakes::FakeTransport broker;
    broker.up = false;
    ferry::Uplink up(10, "sensors/n/telemetry");
    for (uint32_t i = 0; i < 4; ++i) up.enqueue(reading(i));
    CHECK(up.drain(broker, 100) == 0);
    CHECK(up.queued() == 4);
    broker.up = true;
    CHECK(up.drain(broker, 100) == 4);
    REQUIRE(broker.sent.size() == 4);
    for (uint32_t i = 0; i < 4; ++i) {
      ferry::json::Value v;
      REQUIRE(ferry::json::parse(broker.sent[i].payload, v));
      uint64_t seq = 99;
      CHECK((v.get("seq")->as_uint(seq) && seq == i));
      CHECK(broker.sent[i].qos == 1);
      CHECK_FALSE(broker.sent[i].retain);
      CHECK(broker.sent[i].topic == "sensors/n/telemetry");
    }
    CHECK(up.queued() == 0);
    CHECK(up.delivered() == 4);
  }

  TEST_CASE("a reading stays queued until its publish is acknowledged") {
    fakes::FakeTransport broker;
    broker.ack_budget = 2;  // the link dies after two PUBACKs
    ferry::Uplink up(10, "t");
    for (uint32_t i = 0; i < 5; ++i) up.enqueue(reading(i));
    CHECK(up.drain(broker, 100) == 2);
    CHECK(up.queued() == 3);
    broker.ack_budget = -1;
    CHECK(up.drain(broker, 100) == 3);
    CHECK(broker.sent.size() == 5);
    CHECK(broker.sent[2].payload.find("\"seq\":2,") != std::string::npos);
  }

  TEST_CASE("a long outage keeps the newest readings and counts the dropped ones") {
    fakes::FakeTransport broker;
    broker.up = false;
    ferry::Uplink up(100, "t");
    for (uint32_t i = 0; i < 250; ++i) up.enqueue(reading(i));
    CHECK(up.queued() == 100);
    CHECK(up.dropped() == 150);
    broker.up = true;
    CHECK(up.drain(broker, 30) == 30);  // bounded per call
    CHECK(broker.sent.front().payload.find("\"seq\":150,") != std::string::npos);
    CHECK(up.drain(broker, 1000) == 70);
    CHECK(broker.sent.back().payload.find("\"seq\":249,") != std::string::npos);
  }
}
