#include "ferry/uplink.h"

namespace ferry {

std::size_t Uplink::drain(Transport& t, std::size_t max) {
  std::size_t sent = 0;
  while (sent < max && !buf_.empty() && t.connected()) {
    if (!t.publish(topic_, encode_telemetry(buf_.front()), 1, false)) break;
    buf_.pop();
    ++sent;
    ++delivered_;
  }
  return sent;
}

}  // namespace ferry
