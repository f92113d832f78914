// Wi-Fi station with jittered reconnect, and SNTP. Thin: the backoff policy is ferry::Reconnector.
#include <Arduino.h>
#include <WiFi.h>

#include <sys/time.h>
#include <time.h>

#include "app.h"
#include "config.h"
#include "ferry/backoff.h"
#include "secrets.h"

namespace {

ferry::Reconnector g_backoff(FERRY_BACKOFF_BASE_MS, FERRY_BACKOFF_CAP_MS, FERRY_BACKOFF_STABLE_MS);
bool g_up = false;
bool g_sntp_started = false;
uint32_t g_attempt_started = 0;
bool g_attempting = false;
constexpr uint32_t kAssociateTimeoutMs = 20000;

// Any time before this is "not set": the RTC starts at 1970 after a reset.
constexpr time_t kTimeValidAfter = 1704067200;  // 2024-01-01T00:00:00Z

void start_attempt(uint32_t now) {
  WiFi.disconnect(false, false);
  WiFi.begin(FERRY_WIFI_SSID, FERRY_WIFI_PASSWORD);
  g_attempt_started = now;
  g_attempting = true;
}

}  // namespace

void wifi_begin() {
  WiFi.mode(WIFI_STA);
  WiFi.setAutoReconnect(false);  // reconnects follow our jittered backoff instead
  WiFi.setSleep(true);           // modem sleep between DTIM beacons; MQTT keep-alive is 30 s
  start_attempt(millis());
}

bool wifi_poll(uint32_t now) {
  const bool up = WiFi.status() == WL_CONNECTED;
  if (up && !g_up) {
    g_up = true;
    g_attempting = false;
    g_backoff.connected(now);
    logf("wifi", "connected to %s as %s (RSSI %d dBm)", FERRY_WIFI_SSID, WiFi.localIP().toString().c_str(),
         int(WiFi.RSSI()));
    if (!g_sntp_started) {
      // UTC everywhere; readings carry epoch ms. Arduino resyncs every 3 h (CONFIG_LWIP_SNTP_UPDATE_DELAY).
      configTime(0, 0, FERRY_NTP_SERVER_1, FERRY_NTP_SERVER_2);
      g_sntp_started = true;
      // NTP before TLS: wait (bounded) so the first readings and the OTA expiry check have time.
      if (wait_for_time(FERRY_NTP_WAIT_MS)) {
        logf("time", "clock set by SNTP");
      } else {
        logf("time", "no SNTP answer within %d ms; readings go without ts until it comes", FERRY_NTP_WAIT_MS);
      }
    }
  } else if (!up && g_up) {
    g_up = false;
    uint32_t d = g_backoff.disconnected(now, rng());
    logf("wifi", "connection lost; retry in %lu ms", static_cast<unsigned long>(d));
  } else if (!up && g_attempting && now - g_attempt_started > kAssociateTimeoutMs) {
    g_attempting = false;
    uint32_t d = g_backoff.failed(now, rng());
    logf("wifi", "could not join %s (status %d); retry in %lu ms", FERRY_WIFI_SSID, int(WiFi.status()),
         static_cast<unsigned long>(d));
  }
  if (!up && !g_attempting && g_backoff.due(now)) start_attempt(now);
  return up;
}

bool wait_for_time(uint32_t wait_ms) {
  const uint32_t start = millis();
  uint64_t ms;
  while (!wall_clock(ms)) {
    if (millis() - start >= wait_ms) return false;
    delay(100);
  }
  return true;
}

bool wall_clock(uint64_t& epoch_ms) {
  struct timeval tv;
  if (gettimeofday(&tv, nullptr) != 0 || tv.tv_sec < kTimeValidAfter) return false;
  epoch_ms = uint64_t(tv.tv_sec) * 1000u + uint64_t(tv.tv_usec) / 1000u;
  return true;
}
