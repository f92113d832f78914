#include <string>

#include "fakes/doctest.h"
#include "ferry/command.h"

using ferry::CommandVerdict;

TEST_SUITE("command") {
  TEST_CASE("parses the JSON command with id, brightness and expiry") {
    ferry::LedCommand c;
    REQUIRE(ferry::parse_led_command(R"({"cmd":"c-42","brightness":80,"expires":1767225600000})", c));
    CHECK(c.id == "c-42");
    CHECK(c.brightness == 80);
    CHECK(c.has_expires);
    CHECK(c.expires_ms == 1767225600000ULL);
  }

  TEST_CASE("accepts a bare integer, with surrounding whitespace, and echoes an empty id") {
    for (const char* p : {"80", " 80\n", "0", "100"}) {
      ferry::LedCommand c;
      REQUIRE_MESSAGE(ferry::parse_led_command(p, c), p);
      CHECK(c.id.empty());
      CHECK_FALSE(c.has_expires);
    }
    ferry::LedCommand c;
    REQUIRE(ferry::parse_led_command("80", c));
    CHECK(c.brightness == 80);
  }

  TEST_CASE("ignores unknown fields for forward compatibility") {
    ferry::LedCommand c;
    CHECK(ferry::parse_led_command(R"({"cmd":"a","brightness":5,"source":"talkback"})", c));
  }

  TEST_CASE("refuses malformed commands with a reason") {
    const char* bad[] = {
        "", "abc", "80%", "-1", "101", "80.5", "8e1", "\"80\"", "[80]", "{}", R"({"brightness":80})",
        R"({"cmd":"","brightness":80})", R"({"cmd":1,"brightness":80})", R"({"cmd":"a","brightness":"80"})",
        R"({"cmd":"a","brightness":101})", R"({"cmd":"a","brightness":50,"expires":-5})",
        R"({"cmd":"a","brightness":50,"expires":"soon"})", R"({"cmd":"a","brightness":50,"cmd":"b"})",
    };
    for (const char* p : bad) {
      ferry::LedCommand c;
      std::string why;
      CHECK_MESSAGE(!ferry::parse_led_command(p, c, &why), p);
      CHECK_MESSAGE(!why.empty(), p);
    }
    ferry::LedCommand c;
    CHECK_FALSE(ferry::parse_led_command(std::string(R"({"cmd":")") + std::string(65, 'x') + R"(","brightness":1})", c));
    CHECK_FALSE(ferry::parse_led_command(std::string(2000, ' ') + "1", c));
  }

  TEST_CASE("applies a command until it expires, and never when the clock is unknown") {
    ferry::LedCommand c;
    REQUIRE(ferry::parse_led_command(R"({"cmd":"x","brightness":10,"expires":1000})", c));
    CHECK(ferry::judge_led_command(c, true, 999) == CommandVerdict::Apply);
    CHECK(ferry::judge_led_command(c, true, 1000) == CommandVerdict::Expired);
    CHECK(ferry::judge_led_command(c, false, 0) == CommandVerdict::ClockNotSet);
    ferry::LedCommand plain;
    REQUIRE(ferry::parse_led_command("10", plain));
    CHECK(ferry::judge_led_command(plain, false, 0) == CommandVerdict::Apply);
  }

  TEST_CASE("maps brightness to PWM duty linearly over the resolution") {
    CHECK(ferry::led_duty(0, 13) == 0);
    CHECK(ferry::led_duty(100, 13) == 8191);
    CHECK(ferry::led_duty(50, 8) == 128);
    CHECK(ferry::led_duty(1, 8) == 3);
    CHECK(ferry::led_duty(-5, 8) == 0);
    CHECK(ferry::led_duty(500, 8) == 255);
    CHECK(ferry::led_duty(100, 32) == (1u << 20) - 1);
  }
}
