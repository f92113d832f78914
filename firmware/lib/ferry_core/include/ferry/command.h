// LED commands from `sensors/<id>/led/set` (retained, QoS 1).
//
// Accepted payloads: `{"cmd":"<id>","brightness":0..100,"expires"?:epoch ms}` or a bare integer
// such as `80`. QoS 1 means a command can arrive twice, and the retained copy arrives again after
// every reconnect, so commands are absolute (a brightness, not "brighter") and carry an id that is
// echoed on `led/state`: applying one twice is harmless and the sender can match the echo.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace ferry {

struct LedCommand {
  std::string id;        ///< "" for a bare integer
  int brightness = 0;    ///< 0..100
  bool has_expires = false;
  uint64_t expires_ms = 0;
};

/// Parses a payload. False with a reason ("not JSON", "brightness must be an integer 0..100", ...)
/// for anything else; the caller logs it and keeps the LED as it is.
bool parse_led_command(std::string_view payload, LedCommand& out, std::string* reason = nullptr);

enum class CommandVerdict { Apply, Expired, ClockNotSet };

/// A command with `expires` is applied only when the wall clock is known and before the expiry, so
/// a stale retained command is not replayed after a long outage. Without `expires` it always applies.
CommandVerdict judge_led_command(const LedCommand& c, bool clock_valid, uint64_t now_ms);

/// PWM duty for a brightness, for a `resolution_bits`-bit LEDC channel (linear; 100 = full on).
uint32_t led_duty(int brightness, unsigned resolution_bits);

}  // namespace ferry
