// Shared declarations of the ESP32 glue (src/). Everything here is a thin adapter between
// Arduino-ESP32 / ESP-IDF and the portable core in lib/ferry_core; decisions belong in the core.
//
// NOT COMPILED HERE: no ESP32 toolchain was available where this was written. The code targets
// Arduino-ESP32 core 3.x (ESP-IDF 5.x) through the pioarduino platform; see README.md.
#pragma once

#include <Arduino.h>

#include <string>

#if !__has_include("secrets.h")
#error "include/secrets.h is missing: cp include/secrets.example.h include/secrets.h and fill it in (README, Configure)"
#endif

#include "ferry/ports.h"
#include "ferry/rollback.h"
#include "ferry/telemetry.h"

/// Who this node is and how it proves it: read from LittleFS at boot (README "Provisioning").
/// The PEM buffers live for the whole program: NetworkClientSecure keeps pointers, not copies.
struct Identity {
  std::string device_id;
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
};

// ---- main.cpp ----
ferry::Storage& nvs();
ferry::Random& rng();
ferry::Clock& clock_port();
/// Logs one line on the serial console with a component tag.
void logf(const char* component, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

// ---- wifi.cpp ----
void wifi_begin();
/// Drives association with backoff and starts SNTP once connected. Returns true while connected.
bool wifi_poll(uint32_t now_ms);
/// Blocks up to `wait_ms` for the first SNTP answer. True when the wall clock is set.
bool wait_for_time(uint32_t wait_ms);
bool wall_clock(uint64_t& epoch_ms);

// ---- mqtt.cpp ----
void mqtt_begin(const Identity& id, const ferry::Topics& topics);
/// Connects (with backoff) while Wi-Fi is up and keeps the session alive. Returns true when
/// connected. `just_connected` is set on the pass that (re)connected.
bool mqtt_poll(uint32_t now_ms, bool wifi_up, bool& just_connected);
ferry::Transport& mqtt_transport();
/// The newest led/set payload received since the last call (commands are absolute: newest wins).
bool mqtt_take_command(std::string& payload);
/// The oldest `ack` payload not yet taken (commit confirmations, in arrival order).
bool mqtt_take_ack(std::string& payload);
/// Graceful disconnect before an OTA download or a reboot: publishes "offline" first, because the
/// broker sends the Last Will only when a connection dies, not on DISCONNECT.
void mqtt_stop(const char* why);
/// Allows mqtt_poll() to connect again after mqtt_stop() (an update that did not install).
void mqtt_resume();

// ---- ota.cpp ----
/// State of the running image (ESP-IDF otadata).
ferry::ImageState ota_running_state();
bool ota_mark_valid();
/// Marks the running image invalid and reboots into the previous one. Returns only on failure.
void ota_rollback_and_reboot();
void ota_begin(const Identity& id, const ferry::Topics& topics, ferry::BootVerifier& boot);
/// Asks the OTA server on schedule and installs a verified update (reboots on success).
void ota_poll(uint32_t now_ms, bool wifi_up);
