// Hardware seams of the portable core. Everything the core needs from the outside world comes
// through these small interfaces, so the same code runs on the ESP32 (src/ wires Arduino/ESP-IDF
// implementations) and on the host (test/fakes/ has in-memory ones). No Arduino or ESP-IDF header
// may be included anywhere under lib/ferry_core.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ferry {

/// Monotonic and wall-clock time.
class Clock {
 public:
  virtual ~Clock() = default;
  /// Milliseconds since boot; wraps after ~49 days, so compare with subtraction only.
  virtual uint32_t millis() const = 0;
  /// Unix epoch milliseconds, or false when the wall clock has not been set (no SNTP answer yet).
  /// Callers must treat "not set" as unknown, never as 1970.
  virtual bool epoch_ms(uint64_t& out) const = 0;
};

/// A small persistent key-value store (NVS via Preferences on the device).
/// Keys are at most 15 characters (an NVS limit). Writes are durable when the call returns true.
/// Values are small (tens of bytes): this is not a place for readings.
class Storage {
 public:
  virtual ~Storage() = default;
  virtual bool get(const char* key, std::string& out) const = 0;
  virtual bool put(const char* key, std::string_view value) = 0;
  /// Removing a key that does not exist succeeds.
  virtual bool erase(const char* key) = 0;

  /// Reads a decimal unsigned value; returns `fallback` when absent or not a number.
  uint32_t get_u32(const char* key, uint32_t fallback) const;
  bool put_u32(const char* key, uint32_t value);
};

/// The MQTT side as the core sees it.
/// Guarantee expected from implementations: `publish` with qos 1 returns true only after the
/// broker's PUBACK arrived (arduino-mqtt's blocking QoS 1 publish does exactly that), so a caller
/// may forget a message once it returns true. False means "not delivered, keep it".
class Transport {
 public:
  virtual ~Transport() = default;
  virtual bool connected() const = 0;
  virtual bool publish(const std::string& topic, std::string_view payload, int qos, bool retain) = 0;
};

/// Source of random numbers for jitter (esp_random() on the device).
class Random {
 public:
  virtual ~Random() = default;
  virtual uint32_t next_u32() = 0;
};

}  // namespace ferry
