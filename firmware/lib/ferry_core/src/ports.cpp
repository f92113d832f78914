#include "ferry/ports.h"

#include <string>

namespace ferry {

uint32_t Storage::get_u32(const char* key, uint32_t fallback) const {
  std::string raw;
  if (!get(key, raw) || raw.empty() || raw.size() > 10) return fallback;
  uint64_t v = 0;
  for (char c : raw) {
    if (c < '0' || c > '9') return fallback;
    v = v * 10 + uint64_t(c - '0');
  }
  return v > 0xFFFFFFFFu ? fallback : uint32_t(v);
}

bool Storage::put_u32(const char* key, uint32_t value) { return put(key, std::to_string(value)); }

}  // namespace ferry
