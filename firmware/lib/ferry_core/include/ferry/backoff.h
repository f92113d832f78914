// Reconnect backoff with "full jitter" (AWS Architecture Blog, "Exponential Backoff And Jitter"):
// sleep = random(0 .. min(cap, base * 2^attempt)). A fleet that lost its broker at the same moment
// does not come back in lockstep. Separate instances for Wi-Fi, MQTT and OTA.
#pragma once

#include <cstdint>

#include "ferry/ports.h"

namespace ferry {

/// Pure function: the delay before retry number `attempt` (0-based), using `rnd` as the random
/// draw. The shift is clamped, so large attempt counts never overflow past `cap_ms`.
uint32_t backoff_delay_ms(uint32_t attempt, uint32_t base_ms, uint32_t cap_ms, uint32_t rnd);

/// Retry scheduling around backoff_delay_ms, driven by Clock::millis().
class Reconnector {
 public:
  /// `stable_ms`: a connection must last this long before the attempt counter resets, so a link
  /// that connects and drops at once keeps backing off instead of hammering the broker.
  Reconnector(uint32_t base_ms, uint32_t cap_ms, uint32_t stable_ms)
      : base_(base_ms), cap_(cap_ms), stable_(stable_ms) {}

  /// True when a connection attempt may start now.
  bool due(uint32_t now_ms) const { return !waiting_ || int32_t(now_ms - next_ms_) >= 0; }
  /// The attempt failed: schedule the next one. Returns the chosen delay.
  uint32_t failed(uint32_t now_ms, Random& rng);
  void connected(uint32_t now_ms);
  /// A connection ended; if it was short-lived the attempt counter is kept. Schedules the retry.
  uint32_t disconnected(uint32_t now_ms, Random& rng);
  uint32_t attempt() const { return attempt_; }

 private:
  uint32_t base_, cap_, stable_;
  uint32_t attempt_ = 0;
  uint32_t next_ms_ = 0;
  uint32_t connected_at_ = 0;
  bool waiting_ = false;
};

}  // namespace ferry
