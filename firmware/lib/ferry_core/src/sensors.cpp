#include "ferry/sensors.h"

namespace ferry {

uint16_t PotFilter::add(uint16_t raw) {
  uint32_t x = uint32_t(raw) << 8;
  if (!primed_) {
    acc_ = x;
    primed_ = true;
  } else if (x >= acc_) {
    acc_ += (x - acc_) >> shift_;
  } else {
    acc_ -= (acc_ - x) >> shift_;
  }
  return value();
}

bool Debouncer::add(bool level, uint32_t now_ms) {
  if (!primed_) {
    primed_ = true;
    state_ = candidate_ = level;
    since_ = now_ms;
    return false;
  }
  if (level != candidate_) {
    candidate_ = level;
    since_ = now_ms;
    return false;
  }
  if (candidate_ != state_ && now_ms - since_ >= stable_ms_) {
    state_ = candidate_;
    return true;
  }
  return false;
}

bool ReadingSchedule::due(uint32_t now_ms, uint16_t pot, bool sw) const {
  if (!any_) return true;
  if (sw != last_sw_) return true;
  uint16_t diff = pot > last_pot_ ? pot - last_pot_ : last_pot_ - pot;
  if (diff > deadband_) return true;
  return now_ms - last_ms_ >= interval_;
}

void ReadingSchedule::emitted(uint32_t now_ms, uint16_t pot, bool sw) {
  any_ = true;
  last_ms_ = now_ms;
  last_pot_ = pot;
  last_sw_ = sw;
}

}  // namespace ferry
