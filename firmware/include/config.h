// Build-time settings of the Ferry node, one per value, in the style of ESP-IDF Kconfig help.
// Every value can be overridden without editing this file, from platformio.ini:
//   build_flags = -DFERRY_PUBLISH_INTERVAL_MS=5000
// Deployment-specific values (Wi-Fi, broker host, release key) live in secrets.h, copied from
// secrets.example.h. Per-device identity (id, certificate, key) lives on the LittleFS partition,
// see README.md "Provisioning".
#pragma once

// ---- Firmware identity -------------------------------------------------------------------------

// FERRY_FW_VERSION (string, semver)
//   Version of this build, compared with manifest "version" (semver precedence). Release builds set
//   it from platformio.ini so it matches `ferry ota publish --version`.
#ifndef FERRY_FW_VERSION
#define FERRY_FW_VERSION "0.1.0"
#endif

// FERRY_HW (string, ^[a-z0-9][a-z0-9_-]{0,62}$)
//   Hardware id. A manifest whose "hw" differs is refused (reason wrong_hw). Matches
//   `ferry ota publish --hw`.
#ifndef FERRY_HW
#define FERRY_HW "esp32dev"
#endif

// FERRY_SECURE_VERSION (int, 0..4294967295)
//   Anti-rollback counter of this build. The node refuses manifests whose secure_version is lower
//   than max(this, the floor stored in NVS). Raise it (and --secure-version) when a release fixes a
//   security bug, so the vulnerable build can never be installed again.
#ifndef FERRY_SECURE_VERSION
#define FERRY_SECURE_VERSION 0
#endif

// ---- Pins (ESP32 DevKitC / esp32dev) ------------------------------------------------------------

// FERRY_POT_PIN (GPIO, ADC1 only: 32-39)
//   Potentiometer wiper. Must be an ADC1 pin: ADC2 is shared with the Wi-Fi driver.
//   GPIO34 is input-only, which is all a pot needs. Put 100 nF from the pin to GND.
#ifndef FERRY_POT_PIN
#define FERRY_POT_PIN 34
#endif

// FERRY_SWITCH_PIN (GPIO with internal pull-up)
//   Switch to GND; the internal pull-up is enabled, so closed = LOW = "switch": 1.
//   Avoid GPIO34-39 (no pull-ups) and the strapping pins 0, 2, 5, 12, 15.
#ifndef FERRY_SWITCH_PIN
#define FERRY_SWITCH_PIN 27
#endif

// FERRY_LED_PIN (GPIO, output)
//   LED anode through a 220-330 ohm resistor, cathode to GND. Driven by LEDC PWM.
#ifndef FERRY_LED_PIN
#define FERRY_LED_PIN 25
#endif

// FERRY_LED_PWM_FREQ_HZ (int) / FERRY_LED_PWM_BITS (int, 1..20)
//   LEDC frequency and resolution. 5 kHz at 13 bits is flicker-free and within the LEDC timer's
//   range (about 80 MHz / 2^bits).
#ifndef FERRY_LED_PWM_FREQ_HZ
#define FERRY_LED_PWM_FREQ_HZ 5000
#endif
#ifndef FERRY_LED_PWM_BITS
#define FERRY_LED_PWM_BITS 13
#endif

// ---- Sampling and telemetry -------------------------------------------------------------------

// FERRY_SAMPLE_INTERVAL_MS (int, ms)
//   How often the pot and switch are read. Readings are filtered (EMA) and debounced.
#ifndef FERRY_SAMPLE_INTERVAL_MS
#define FERRY_SAMPLE_INTERVAL_MS 20
#endif

// FERRY_PUBLISH_INTERVAL_MS (int, ms)
//   Heartbeat: a reading is published at least this often even when nothing changed.
#ifndef FERRY_PUBLISH_INTERVAL_MS
#define FERRY_PUBLISH_INTERVAL_MS 10000
#endif

// FERRY_POT_DEADBAND (int, ADC counts)
//   A pot change larger than this is published at once; smaller changes wait for the heartbeat.
#ifndef FERRY_POT_DEADBAND
#define FERRY_POT_DEADBAND 40
#endif

// FERRY_SWITCH_DEBOUNCE_MS (int, ms)
//   The switch level must be stable this long before it counts.
#ifndef FERRY_SWITCH_DEBOUNCE_MS
#define FERRY_SWITCH_DEBOUNCE_MS 30
#endif

// FERRY_OUTBOX_CAPACITY (int, readings)
//   The outbox holds every reading until the gateway confirms it committed it (docs/delivery.md),
//   online or not; 32 bytes each, allocated once at boot. When it is full the oldest reading is
//   dropped and counted (logged at most once a minute); the gateway sees the gap in seq. Lost on
//   reset. 2048 readings = 64 KiB of heap = about 5.7 h at the 10 s heartbeat.
#ifndef FERRY_OUTBOX_CAPACITY
#define FERRY_OUTBOX_CAPACITY 2048
#endif

// FERRY_DRAIN_PER_LOOP (int, messages)
//   At most this many readings (new, resent or a probe) are published per loop() pass, so LED
//   commands and the watchdog are served between them after a reconnect. Each QoS 1 publish waits
//   for its PUBACK.
#ifndef FERRY_DRAIN_PER_LOOP
#define FERRY_DRAIN_PER_LOOP 10
#endif

// FERRY_ACK_TIMEOUT_MS / FERRY_ACK_TIMEOUT_MAX_MS (int, ms)
//   When no commit confirmation has come for this long since the oldest unconfirmed reading was
//   sent, that reading is sent again as a probe; the period doubles up to the maximum while none
//   comes, and starts again at the first confirmation (docs/delivery.md rule 5).
#ifndef FERRY_ACK_TIMEOUT_MS
#define FERRY_ACK_TIMEOUT_MS 10000
#endif
#ifndef FERRY_ACK_TIMEOUT_MAX_MS
#define FERRY_ACK_TIMEOUT_MAX_MS 300000
#endif

// FERRY_ACK_REORDER_MS (int, ms)
//   A confirmation that releases a reading marks held readings published before it for sending
//   again (they were lost on the way), but only those published at least this long ago: gateway
//   replicas confirm independently, so their confirmations may arrive out of order
//   (docs/delivery.md rule 3, docs/scale-out.md).
#ifndef FERRY_ACK_REORDER_MS
#define FERRY_ACK_REORDER_MS 1000
#endif

// FERRY_ACK_FALLBACK_MS (int, ms)
//   When no confirmation at all (live or retained, any boot) has arrived this long after the first
//   PUBACK of a connection, the gateway is taken for an old one that does not confirm commits and
//   readings are released on the broker's PUBACK (confirm=broker); the first confirmation switches
//   back (docs/delivery.md rule 6).
#ifndef FERRY_ACK_FALLBACK_MS
#define FERRY_ACK_FALLBACK_MS 60000
#endif

// ---- Network ------------------------------------------------------------------------------------

// FERRY_MQTT_KEEPALIVE_S (int, s) / FERRY_MQTT_TIMEOUT_MS (int, ms)
//   MQTT keep-alive; the broker publishes the "offline" Last Will after 1.5x this without traffic.
//   The timeout bounds each blocking call, including the wait for a QoS 1 PUBACK.
#ifndef FERRY_MQTT_KEEPALIVE_S
#define FERRY_MQTT_KEEPALIVE_S 30
#endif
#ifndef FERRY_MQTT_TIMEOUT_MS
#define FERRY_MQTT_TIMEOUT_MS 5000
#endif

// FERRY_MQTT_BUFFER_BYTES (int)
//   arduino-mqtt read/write buffer. An incoming packet larger than this is an error that closes the
//   connection, so it must hold the largest led/set payload and the largest commit confirmation
//   (796 bytes for 32 ranges) plus topic; src/mqtt.cpp refuses to compile below 878.
#ifndef FERRY_MQTT_BUFFER_BYTES
#define FERRY_MQTT_BUFFER_BYTES 1024
#endif

// FERRY_BACKOFF_BASE_MS / FERRY_BACKOFF_CAP_MS / FERRY_BACKOFF_STABLE_MS (int, ms)
//   Reconnect backoff with full jitter: wait random(0 .. min(cap, base * 2^attempt)). The attempt
//   counter resets only after a connection stayed up for STABLE_MS.
#ifndef FERRY_BACKOFF_BASE_MS
#define FERRY_BACKOFF_BASE_MS 1000
#endif
#ifndef FERRY_BACKOFF_CAP_MS
#define FERRY_BACKOFF_CAP_MS 120000
#endif
#ifndef FERRY_BACKOFF_STABLE_MS
#define FERRY_BACKOFF_STABLE_MS 60000
#endif

// FERRY_NTP_SERVER_1 / FERRY_NTP_SERVER_2 (string)
//   SNTP servers. Time is needed for "ts" in readings and for manifest and command expiry.
#ifndef FERRY_NTP_SERVER_1
#define FERRY_NTP_SERVER_1 "pool.ntp.org"
#endif
#ifndef FERRY_NTP_SERVER_2
#define FERRY_NTP_SERVER_2 "time.google.com"
#endif

// FERRY_NTP_WAIT_MS (int, ms)
//   How long boot waits for the first SNTP answer before connecting anyway. Without time, readings
//   carry no "ts" (the gateway uses its receive time) and OTA checks are postponed.
#ifndef FERRY_NTP_WAIT_MS
#define FERRY_NTP_WAIT_MS 10000
#endif

// ---- OTA ----------------------------------------------------------------------------------------

// FERRY_OTA_CHECK_INTERVAL_S (int, s)
//   How often GET /ota/latest is asked. A random 0-25 % is added so a fleet does not ask at once.
#ifndef FERRY_OTA_CHECK_INTERVAL_S
#define FERRY_OTA_CHECK_INTERVAL_S 3600
#endif

// FERRY_OTA_FIRST_CHECK_S (int, s)
//   Delay before the first check after boot (only once the running image is confirmed valid).
#ifndef FERRY_OTA_FIRST_CHECK_S
#define FERRY_OTA_FIRST_CHECK_S 60
#endif

// FERRY_SELF_TEST_TIMEOUT_MS (int, ms)
//   A freshly installed image must reach Wi-Fi, the broker and one acknowledged publish within
//   this time, or it is rolled back. Keep it short: a reset during the test also rolls back.
#ifndef FERRY_SELF_TEST_TIMEOUT_MS
#define FERRY_SELF_TEST_TIMEOUT_MS 120000
#endif

// FERRY_OTA_HTTP_TIMEOUT_MS (int, ms)
//   Socket timeout for the manifest request and each read of the image download.
#ifndef FERRY_OTA_HTTP_TIMEOUT_MS
#define FERRY_OTA_HTTP_TIMEOUT_MS 15000
#endif

// FERRY_OTA_ATTEMPTS (int)
//   Download attempts per check; each one resumes where the previous stopped (HTTP Range).
#ifndef FERRY_OTA_ATTEMPTS
#define FERRY_OTA_ATTEMPTS 5
#endif
