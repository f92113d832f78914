// Telemetry uplink: every reading goes into the ring buffer first, then drains in order.
// A reading leaves the buffer only after its QoS 1 publish was acknowledged (Transport contract
// in ports.h), so a dropped connection mid-drain loses nothing; at worst the broker sees a
// duplicate, which (device, boot, seq) identifies.
#pragma once

#include <cstddef>
#include <string>

#include "ferry/ports.h"
#include "ferry/ring_buffer.h"
#include "ferry/telemetry.h"

namespace ferry {

class Uplink {
 public:
  Uplink(std::size_t capacity, std::string topic) : buf_(capacity), topic_(std::move(topic)) {}

  /// Queues a reading; returns true when the oldest queued one was dropped to make room.
  bool enqueue(const Reading& r) { return buf_.push(r); }

  /// Publishes up to `max` queued readings, oldest first; stops at the first failure.
  /// Returns how many were delivered. The per-call cap keeps loop() responsive and the broker's
  /// inflight queue small after a long outage.
  std::size_t drain(Transport& t, std::size_t max);

  std::size_t queued() const { return buf_.size(); }
  uint32_t dropped() const { return buf_.dropped(); }
  uint32_t delivered() const { return delivered_; }

 private:
  RingBuffer<Reading> buf_;
  std::string topic_;
  uint32_t delivered_ = 0;
};

}  // namespace ferry
