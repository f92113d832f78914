#include "ferry/command.h"

#include "ferry/json.h"

namespace ferry {
namespace {

bool fail(std::string* reason, const char* why) {
  if (reason) *reason = why;
  return false;
}

bool brightness_of(const json::Value& v, int& out) { return v.as_uint_to(out, 100); }

}  // namespace

bool parse_led_command(std::string_view payload, LedCommand& out, std::string* reason) {
  out = LedCommand{};
  json::Value v;
  json::Limits lim;
  lim.max_bytes = 1024;
  lim.max_depth = 2;
  std::string err;
  if (!json::parse(payload, v, &err, lim)) {
    if (reason) *reason = "not JSON or a bare integer: " + err;
    return false;
  }
  if (v.is(json::Type::Number)) {
    if (!brightness_of(v, out.brightness)) return fail(reason, "brightness must be an integer 0..100");
    return true;
  }
  if (!v.is(json::Type::Object)) return fail(reason, "expected {\"cmd\", \"brightness\"} or an integer");
  const json::Value* id = v.get("cmd");
  const json::Value* b = v.get("brightness");
  const json::Value* e = v.get("expires");
  if (!id || !id->is(json::Type::String) || id->text.empty() || id->text.size() > 64) {
    return fail(reason, "cmd must be a string of 1..64 characters");
  }
  if (!b || !brightness_of(*b, out.brightness)) return fail(reason, "brightness must be an integer 0..100");
  if (e) {
    if (!e->as_uint(out.expires_ms)) return fail(reason, "expires must be epoch milliseconds");
    out.has_expires = true;
  }
  out.id = id->text;
  return true;
}

CommandVerdict judge_led_command(const LedCommand& c, bool clock_valid, uint64_t now_ms) {
  if (!c.has_expires) return CommandVerdict::Apply;
  if (!clock_valid) return CommandVerdict::ClockNotSet;
  return now_ms < c.expires_ms ? CommandVerdict::Apply : CommandVerdict::Expired;
}

uint32_t led_duty(int brightness, unsigned resolution_bits) {
  if (brightness <= 0) return 0;
  if (resolution_bits > 20) resolution_bits = 20;  // LEDC maximum on ESP32
  uint32_t full = (uint32_t(1) << resolution_bits) - 1;
  if (brightness >= 100) return full;
  return uint32_t((uint64_t(full) * uint64_t(brightness) + 50) / 100);
}

}  // namespace ferry
