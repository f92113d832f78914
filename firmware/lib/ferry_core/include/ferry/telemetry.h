// Payloads and topics the node publishes (README.md#topics-and-payloads).
#pragma once

#include <cstdint>
#include <string>

#include "ferry/ports.h"

namespace ferry {

/// One reading. `(device, boot, seq)` identifies it end to end, so a QoS 1 duplicate or a replay
/// after reconnect is recognised by the gateway; a gap in `seq` within one boot counts readings the
/// outbox had to drop.
/// Fields are ordered widest first so a Reading is 24 bytes (not 32) on the ESP32 as on the host:
/// the outbox holds thousands of them (ferry/outbox.h states the RAM cost).
struct Reading {
  uint64_t ts_ms = 0;
  uint32_t seq = 0;
  uint32_t boot = 0;
  uint16_t pot = 0;     ///< 0..4095 (12-bit ADC)
  bool has_ts = false;  ///< false until SNTP answered: then the gateway uses its receive time
  uint8_t sw = 0;       ///< 0 or 1
  bool has_led = false;
  uint8_t led = 0;      ///< 0..100, the brightness currently shown
};

/// `{"seq":1,"boot":7,"ts":1767225600000,"pot":2048,"switch":1,"led":80}`; `ts` and `led` only
/// when known. Out-of-range pot/led values are clamped rather than sent.
std::string encode_telemetry(const Reading& r);

/// `{"cmd":"<id>","brightness":80}` for `led/state` (retained).
std::string encode_led_state(const std::string& cmd_id, int brightness);

/// `{"deployment":"...","state":"...","version":"...","reason":"..."}`; reason only when non-empty.
std::string encode_ota_status(const std::string& deployment, const std::string& state, const std::string& version,
                              const std::string& reason);

/// The node's topics: `sensors/<id>/...`. `ack` is the one the gateway publishes commit
/// confirmations on (docs/delivery.md); the node subscribes to it and to `led_set`.
struct Topics {
  explicit Topics(const std::string& device_id);
  std::string telemetry, led_set, led_state, status, ota_status, ack;
};

/// Increments and stores the boot counter ("boot" in NVS); returns the new value (1 on first boot).
/// One flash write per boot; `seq` lives in RAM
/// (docs/firmware-notes.md#boot-counter-and-sequence-numbers).
uint32_t next_boot_count(Storage& s);

}  // namespace ferry
