// Input conditioning for the potentiometer and the switch, and when to take a reading.
// Pure logic: the glue feeds raw samples with their millis() time.
#pragma once

#include <cstdint>

namespace ferry {

/// Exponential moving average for the pot (ESP32 ADC readings are noisy,
/// docs/firmware-notes.md#adc-noise), in fixed point: y += (x - y) / 2^shift. The first sample
/// initialises the filter.
class PotFilter {
 public:
  explicit PotFilter(unsigned shift = 3) : shift_(shift) {}
  uint16_t add(uint16_t raw);
  uint16_t value() const { return uint16_t(acc_ >> 8); }

 private:
  unsigned shift_;
  uint32_t acc_ = 0;  // value << 8, so small steps are not lost to integer division
  bool primed_ = false;
};

/// A switch level is accepted only after it has been stable for `stable_ms`.
class Debouncer {
 public:
  explicit Debouncer(uint32_t stable_ms = 30) : stable_ms_(stable_ms) {}
  /// Feeds a raw level; returns true when the debounced state changed.
  bool add(bool level, uint32_t now_ms);
  bool state() const { return state_; }

 private:
  uint32_t stable_ms_;
  bool state_ = false;
  bool candidate_ = false;
  uint32_t since_ = 0;
  bool primed_ = false;
};

/// Decides when to emit a reading: at once when the switch changes or the pot moves more than
/// `pot_deadband`, otherwise every `interval_ms` as a heartbeat.
class ReadingSchedule {
 public:
  ReadingSchedule(uint32_t interval_ms, uint16_t pot_deadband) : interval_(interval_ms), deadband_(pot_deadband) {}
  bool due(uint32_t now_ms, uint16_t pot, bool sw) const;
  void emitted(uint32_t now_ms, uint16_t pot, bool sw);

 private:
  uint32_t interval_;
  uint16_t deadband_;
  bool any_ = false;
  uint32_t last_ms_ = 0;
  uint16_t last_pot_ = 0;
  bool last_sw_ = false;
};

}  // namespace ferry
