#include "ferry/backoff.h"

#include <algorithm>

namespace ferry {

uint32_t backoff_delay_ms(uint32_t attempt, uint32_t base_ms, uint32_t cap_ms, uint32_t rnd) {
  uint64_t ceiling = cap_ms;
  if (attempt < 32) ceiling = std::min<uint64_t>(cap_ms, uint64_t(base_ms) << attempt);
  return uint32_t(uint64_t(rnd) % (ceiling + 1));
}

uint32_t Reconnector::failed(uint32_t now_ms, Random& rng) {
  uint32_t d = backoff_delay_ms(attempt_, base_, cap_, rng.next_u32());
  if (attempt_ < 31) ++attempt_;
  next_ms_ = now_ms + d;
  waiting_ = true;
  return d;
}

void Reconnector::connected(uint32_t now_ms) {
  connected_at_ = now_ms;
  waiting_ = false;
}

uint32_t Reconnector::disconnected(uint32_t now_ms, Random& rng) {
  if (now_ms - connected_at_ >= stable_) attempt_ = 0;
  return failed(now_ms, rng);
}

}  // namespace ferry
