// Fixed-capacity FIFO for readings taken while the broker is unreachable.
//
// RAM only: it survives a lost connection, not a reset (docs/firmware-notes.md#offline-buffer).
// When full, the OLDEST entry is dropped and counted, never the newest
// (firmware/README.md#how-it-behaves), so after a long outage the node reports the most recent
// state. Storage is allocated once, up front: no heap churn on a device that runs for months.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ferry {

template <typename T>
class RingBuffer {
 public:
  explicit RingBuffer(std::size_t capacity) : slots_(capacity ? capacity : 1) {}

  /// Appends `v`; returns true when an older entry had to be dropped to make room.
  bool push(const T& v) {
    bool dropped = false;
    if (size_ == slots_.size()) {
      head_ = (head_ + 1) % slots_.size();
      --size_;
      ++dropped_;
      dropped = true;
    }
    slots_[(head_ + size_) % slots_.size()] = v;
    ++size_;
    return dropped;
  }

  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }
  std::size_t capacity() const { return slots_.size(); }
  /// Oldest entry. Precondition: !empty().
  const T& front() const { return slots_[head_]; }
  /// Removes the oldest entry (after it was delivered). No-op when empty.
  void pop() {
    if (!size_) return;
    head_ = (head_ + 1) % slots_.size();
    --size_;
  }
  /// Entries dropped since boot because the buffer was full.
  uint32_t dropped() const { return dropped_; }

 private:
  std::vector<T> slots_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
  uint32_t dropped_ = 0;
};

}  // namespace ferry
