// Ferry node: wiring of the ports and the main loop. The logic lives in lib/ferry_core; this file
// reads pins, moves data between the core and the network glue, and acts on the core's decisions.
//
// Boot order (docs/firmware-notes.md#boot-order, firmware/README.md#how-it-behaves): NVS boot
// counter -> identity from LittleFS -> Wi-Fi -> SNTP (bounded wait) -> MQTT over mutual TLS (Last
// Will "offline" on .../status) -> self-test of a new image -> OTA checks once the running image is
// confirmed.
#include <Arduino.h>
#include <LittleFS.h>
#include <Preferences.h>
#include <esp_random.h>

#include <cstdarg>
#include <memory>

#include "app.h"
#include "config.h"
#include "ferry/backoff.h"
#include "ferry/command.h"
#include "ferry/manifest.h"
#include "ferry/outbox.h"
#include "ferry/rollback.h"
#include "ferry/sensors.h"
#include "ferry/telemetry.h"

// Arduino confirms a PENDING_VERIFY image inside initArduino(), before setup(), unless this returns
// true (cores/esp32/esp32-hal-misc.c). It must be extern "C": the weak default is a C symbol, and a
// C++ definition would be name-mangled and silently ignored. With it, the image stays unconfirmed
// until BootVerifier says the self-test passed.
extern "C" bool verifyRollbackLater() { return true; }

namespace {

// ---- ports ----

/// NVS through Preferences, namespace "ferry". Preferences keys are <= 15 characters.
class NvsStorage : public ferry::Storage {
 public:
  bool begin() { return prefs_.begin("ferry", false); }
  bool get(const char* key, std::string& out) const override {
    auto& p = const_cast<Preferences&>(prefs_);  // Preferences' getters are not const
    if (!p.isKey(key)) return false;
    String v = p.getString(key, "");
    out.assign(v.c_str(), v.length());
    return true;
  }
  bool put(const char* key, std::string_view value) override {
    std::string v(value);
    return prefs_.putString(key, v.c_str()) == v.size();
  }
  bool erase(const char* key) override {
    if (!prefs_.isKey(key)) return true;
    return prefs_.remove(key);
  }

 private:
  Preferences prefs_;
};

class ArduinoClock : public ferry::Clock {
 public:
  uint32_t millis() const override { return ::millis(); }
  bool epoch_ms(uint64_t& out) const override { return wall_clock(out); }
};

class HardwareRandom : public ferry::Random {
 public:
  uint32_t next_u32() override { return esp_random(); }
};

NvsStorage g_nvs;
ArduinoClock g_clock;
HardwareRandom g_rng;

Identity g_id;
std::unique_ptr<ferry::Topics> g_topics;
std::unique_ptr<ferry::BootVerifier> g_boot;
std::unique_ptr<ferry::Outbox> g_outbox;
ferry::ConfirmMode g_logged_mode = ferry::ConfirmMode::Gateway;

ferry::PotFilter g_pot(3);
ferry::Debouncer g_switch(FERRY_SWITCH_DEBOUNCE_MS);
ferry::ReadingSchedule g_schedule(FERRY_PUBLISH_INTERVAL_MS, FERRY_POT_DEADBAND);
uint32_t g_boot_count = 0;
uint32_t g_seq = 0;
uint32_t g_last_sample = 0;
uint32_t g_last_drop_log = 0;

int g_led = 0;                 // brightness shown now, 0..100
std::string g_led_cmd;         // id of the command that set it ("" = none / bare integer)
bool g_led_state_dirty = true; // led/state still to be published (retained)

bool read_file(const char* path, std::string& out) {
  File f = LittleFS.open(path, "r");
  if (!f) return false;
  out.clear();
  out.reserve(f.size() + 1);
  while (f.available()) {
    char buf[256];
    size_t n = f.readBytes(buf, sizeof buf);
    out.append(buf, n);
  }
  f.close();
  return true;
}

/// Loads the per-device identity written by `pio run -t uploadfs` (README "Provisioning").
bool load_identity(Identity& id) {
  if (!LittleFS.begin(false)) {
    logf("boot", "LittleFS not mounted; upload the data/ folder with: pio run -t uploadfs");
    return false;
  }
  bool ok = read_file("/device_id", id.device_id) && read_file("/ca.crt", id.ca_pem) &&
            read_file("/device.crt", id.cert_pem) && read_file("/device.key", id.key_pem);
  while (!id.device_id.empty() && isspace(static_cast<unsigned char>(id.device_id.back()))) id.device_id.pop_back();
  if (!ok) {
    logf("boot", "missing /device_id, /ca.crt, /device.crt or /device.key on LittleFS; see README Provisioning");
    return false;
  }
  if (!ferry::is_valid_id(id.device_id)) {
    logf("boot", "device id \"%s\" does not match ^[a-z0-9][a-z0-9_-]{0,62}$", id.device_id.c_str());
    return false;
  }
  return true;
}

void show_led(int brightness) {
  g_led = brightness;
  ledcWrite(FERRY_LED_PIN, ferry::led_duty(brightness, FERRY_LED_PWM_BITS));
}

void sample(uint32_t now) {
  if (now - g_last_sample < FERRY_SAMPLE_INTERVAL_MS) return;
  g_last_sample = now;
  uint16_t pot = g_pot.add(uint16_t(analogRead(FERRY_POT_PIN)));
  g_switch.add(digitalRead(FERRY_SWITCH_PIN) == LOW, now);  // closed to GND = 1
  bool sw = g_switch.state();
  if (!g_schedule.due(now, pot, sw)) return;
  g_schedule.emitted(now, pot, sw);
  ferry::Reading r;
  r.seq = g_seq++;
  r.boot = g_boot_count;
  r.has_ts = wall_clock(r.ts_ms);
  r.pot = pot;
  r.sw = sw ? 1 : 0;
  r.has_led = true;
  r.led = uint8_t(g_led);
  if (g_outbox->push(r) && now - g_last_drop_log > 60000) {
    g_last_drop_log = now;
    logf("outbox", "full (%u readings): %lu dropped so far, oldest first (confirm=%s)",
         unsigned(g_outbox->capacity()), static_cast<unsigned long>(g_outbox->dropped()),
         ferry::to_string(g_outbox->mode()));
  }
}

/// Logs each switch between gateway confirmations and the PUBACK fallback (docs/delivery.md rule 6).
void log_mode_change() {
  const ferry::ConfirmMode m = g_outbox->mode();
  if (m == g_logged_mode) return;
  g_logged_mode = m;
  if (m == ferry::ConfirmMode::Broker) {
    logf("outbox", "no commit confirmation within %lu s of the first PUBACK: the gateway does not confirm "
         "commits; releasing readings on PUBACK (confirm=broker)", static_cast<unsigned long>(FERRY_ACK_FALLBACK_MS / 1000));
  } else {
    logf("outbox", "the gateway confirms commits again; releasing readings on confirmation (confirm=gateway)");
  }
}

/// Hands the queued `ack` payloads (commit confirmations) to the outbox.
void handle_confirmations(uint32_t now) {
  std::string payload, why;
  while (mqtt_take_ack(payload)) {
    if (!g_outbox->on_ack_payload(payload, now, &why)) logf("outbox", "ignored ack payload: %s", why.c_str());
  }
  log_mode_change();
}

void handle_command() {
  std::string payload;
  if (!mqtt_take_command(payload)) return;
  // An empty retained message means the gateway cleared an expired command: keep the LED as it is.
  if (payload.empty()) return;
  ferry::LedCommand cmd;
  std::string why;
  if (!ferry::parse_led_command(payload, cmd, &why)) {
    logf("led", "ignored led/set payload: %s", why.c_str());
    return;
  }
  uint64_t now_ms = 0;
  bool clock_ok = wall_clock(now_ms);
  switch (ferry::judge_led_command(cmd, clock_ok, now_ms)) {
    case ferry::CommandVerdict::Apply:
      show_led(cmd.brightness);
      g_led_cmd = cmd.id;
      g_led_state_dirty = true;
      logf("led", "brightness %d (cmd \"%s\")", cmd.brightness, cmd.id.c_str());
      break;
    case ferry::CommandVerdict::Expired:
      logf("led", "ignored expired command \"%s\"", cmd.id.c_str());
      break;
    case ferry::CommandVerdict::ClockNotSet:
      logf("led", "ignored command \"%s\" with an expiry: the clock is not set yet", cmd.id.c_str());
      break;
  }
}

void self_test_and_reports(uint32_t now, bool connected) {
  switch (g_boot->poll(now)) {
    case ferry::BootAction::MarkValid:
      if (ota_mark_valid()) {
        g_boot->marked_valid();
        logf("ota", "self-test passed; image %s confirmed", FERRY_FW_VERSION);
      } else {
        logf("ota", "esp_ota_mark_app_valid_cancel_rollback failed; the bootloader will revert on reset");
      }
      break;
    case ferry::BootAction::Rollback:
      logf("ota", "%s; rolling back", g_boot->rollback_reason().c_str());
      g_boot->rolling_back();
      mqtt_stop("rollback");
      ota_rollback_and_reboot();  // returns only when there is no previous image
      logf("ota", "rollback impossible (no other valid image); staying on this one");
      mqtt_resume();
      break;
    case ferry::BootAction::None:
      break;
  }
  std::string report;
  if (connected && g_boot->report(report) &&
      mqtt_transport().publish(g_topics->ota_status, report, 1, false)) {
    g_boot->report_sent();
  }
}

}  // namespace

ferry::Storage& nvs() { return g_nvs; }
ferry::Random& rng() { return g_rng; }
ferry::Clock& clock_port() { return g_clock; }

void logf(const char* component, const char* fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  Serial.printf("[%10lu] %-6s %s\n", static_cast<unsigned long>(millis()), component, line);
}

void setup() {
  Serial.begin(115200);
  pinMode(FERRY_SWITCH_PIN, INPUT_PULLUP);
  analogReadResolution(12);
  analogSetPinAttenuation(FERRY_POT_PIN, ADC_11db);  // ~150-3100 mV usable range (docs/firmware-notes.md#adc-and-pins)
  ledcAttach(FERRY_LED_PIN, FERRY_LED_PWM_FREQ_HZ, FERRY_LED_PWM_BITS);
  show_led(0);

  if (!g_nvs.begin()) logf("boot", "NVS namespace \"ferry\" did not open; counters will not persist");
  g_boot_count = ferry::next_boot_count(g_nvs);
  logf("boot", "Ferry node %s (%s), boot #%lu", FERRY_FW_VERSION, FERRY_HW, static_cast<unsigned long>(g_boot_count));

  while (!load_identity(g_id)) {
    // Without an identity there is nothing useful to do; keep telling the person at the console.
    delay(10000);
  }
  g_topics.reset(new ferry::Topics(g_id.device_id));
  ferry::OutboxOptions oo;
  oo.capacity = FERRY_OUTBOX_CAPACITY;
  oo.ack_timeout_ms = FERRY_ACK_TIMEOUT_MS;
  oo.ack_timeout_max_ms = FERRY_ACK_TIMEOUT_MAX_MS;
  oo.fallback_ms = FERRY_ACK_FALLBACK_MS;
  oo.reorder_ms = FERRY_ACK_REORDER_MS;
  g_outbox.reset(new ferry::Outbox(g_topics->telemetry, g_boot_count, oo));

  ferry::BootVerifier::Options bo;
  bo.running_version = FERRY_FW_VERSION;
  bo.state = ota_running_state();
  bo.compiled_secure_version = FERRY_SECURE_VERSION;
  bo.self_test_timeout_ms = FERRY_SELF_TEST_TIMEOUT_MS;
  g_boot.reset(new ferry::BootVerifier(g_nvs, bo, millis()));
  if (g_boot->pending_verify()) logf("ota", "new image %s is pending verification", FERRY_FW_VERSION);

  wifi_begin();
  mqtt_begin(g_id, *g_topics);
  ota_begin(g_id, *g_topics, *g_boot);
  logf("boot", "device %s ready", g_id.device_id.c_str());
}

void loop() {
  const uint32_t now = millis();
  const bool wifi_up = wifi_poll(now);
  if (wifi_up) g_boot->wifi_up();

  bool just_connected = false;
  const bool connected = mqtt_poll(now, wifi_up, just_connected);
  if (just_connected) {
    g_boot->broker_connected();
    // mqtt_poll published the retained "online" at QoS 1 before returning just_connected.
    g_boot->publish_acked();
    g_led_state_dirty = true;
    g_outbox->on_connected();  // resend everything unconfirmed (docs/delivery.md rule 4)
  }

  sample(now);
  handle_confirmations(now);
  if (connected) {
    handle_command();
    if (g_led_state_dirty &&
        mqtt_transport().publish(g_topics->led_state, ferry::encode_led_state(g_led_cmd, g_led), 1, true)) {
      g_led_state_dirty = false;
    }
    g_outbox->pump(mqtt_transport(), now, FERRY_DRAIN_PER_LOOP);
    log_mode_change();
  }
  self_test_and_reports(now, connected);
  ota_poll(now, wifi_up);
  delay(1);  // lets the idle task run (task watchdog) when nothing else blocks
}
