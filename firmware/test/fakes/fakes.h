// In-memory stand-ins for the ports in ferry/ports.h: a settable clock, a map for NVS, a broker
// that acknowledges or refuses on demand, and a scripted random source.
#pragma once

#include <deque>
#include <map>
#include <string>
#include <vector>

#include "ferry/ports.h"

namespace fakes {

class FakeClock : public ferry::Clock {
 public:
  uint32_t now = 0;
  bool synced = false;
  uint64_t epoch = 0;
  uint32_t millis() const override { return now; }
  bool epoch_ms(uint64_t& out) const override {
    if (synced) out = epoch;
    return synced;
  }
};

/// Behaves like Preferences on NVS: values survive as long as the object lives ("across reboots"
/// in a test = reuse the same FakeStorage with a new BootVerifier).
class FakeStorage : public ferry::Storage {
 public:
  std::map<std::string, std::string> kv;
  int writes = 0;
  bool fail_writes = false;
  bool get(const char* key, std::string& out) const override {
    auto it = kv.find(key);
    if (it == kv.end()) return false;
    out = it->second;
    return true;
  }
  bool put(const char* key, std::string_view value) override {
    if (fail_writes) return false;
    ++writes;
    kv[key] = std::string(value);
    return true;
  }
  bool erase(const char* key) override {
    kv.erase(key);
    return true;
  }
};

struct Published {
  std::string topic, payload;
  int qos;
  bool retain;
};

/// A broker connection. `ack_budget` publishes succeed (PUBACK), then publishes fail, as when the
/// link drops mid-drain; -1 = unlimited.
class FakeTransport : public ferry::Transport {
 public:
  bool up = true;
  int ack_budget = -1;
  std::vector<Published> sent;
  bool connected() const override { return up; }
  bool publish(const std::string& topic, std::string_view payload, int qos, bool retain) override {
    if (!up || ack_budget == 0) return false;
    if (ack_budget > 0) --ack_budget;
    sent.push_back({topic, std::string(payload), qos, retain});
    return true;
  }
};

class ScriptedRandom : public ferry::Random {
 public:
  std::deque<uint32_t> values;
  uint32_t fallback = 0xFFFFFFFFu;
  uint32_t next_u32() override {
    if (values.empty()) return fallback;
    uint32_t v = values.front();
    values.pop_front();
    return v;
  }
};

}  // namespace fakes
