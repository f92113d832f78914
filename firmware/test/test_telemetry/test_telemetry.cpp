#include <string>

#include "fakes/doctest.h"
#include "fakes/fakes.h"
#include "ferry/json.h"
#include "ferry/telemetry.h"

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
    CHECK(t.ack == "sensors/node-1/ack");
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
