// OTA: ask, verify, download with resume, check, switch, confirm or roll back.
//
// Order (ESP-IDF advanced_https_ota, docs/firmware-notes.md#ota-order): GET /ota/latest -> verify
// the envelope signature over the exact payload bytes and the manifest policy (core:
// ferry::check_envelope) -> stop MQTT (one TLS session at a time on a no-PSRAM ESP32,
// docs/firmware-notes.md#heap-and-tls-sessions) -> download the image into the inactive slot,
// hashing every byte (core: ferry::ImageVerifier) -> size + sha256 -> esp_ota_set_boot_partition
// (ESP-IDF validates the image format too) -> record the pending install -> reboot. The new image
// then runs its self-test (main.cpp + ferry::BootVerifier).
//
// Why not Arduino's Update/HTTPUpdate: they check only the 0xE9 magic byte and an optional MD5, and
// Update cannot resume at an offset (docs/firmware-notes.md#arduino-update-and-httpupdate). The
// slot is written with esp_partition_* instead, sector by sector, with a checkpoint in NVS every
// 64 KiB; a resumed download re-hashes the bytes already in flash (read back) and asks for the rest
// with `Range: bytes=N-` plus `If-Range: "<sha256>"` (the server's ETag), so a changed image
// restarts from 0 with a 200.
#include <Arduino.h>
#include <HTTPClient.h>
#include <NetworkClientSecure.h>
#include <esp_ota_ops.h>
#include <esp_partition.h>

#include <memory>
#include <vector>

#include "app.h"
#include "config.h"
#include "ferry/backoff.h"
#include "ferry/manifest.h"
#include "ferry/rollback.h"
#include "ferry/update.h"
#include "secrets.h"

namespace {

const Identity* g_id = nullptr;
const ferry::Topics* g_topics = nullptr;
ferry::BootVerifier* g_boot = nullptr;
std::vector<std::unique_ptr<ferry::PublicKey>> g_keys;
std::vector<const ferry::PublicKey*> g_trusted;
uint32_t g_next_check = 0;
bool g_scheduled = false;
std::string g_last_refusal;  // "<deployment>/<reason>": each refusal is reported once per boot

void schedule(uint32_t now, uint32_t seconds) {
  uint32_t jitter = seconds / 4 ? rng().next_u32() % (seconds / 4 + 1) : 0;
  g_next_check = now + (seconds + jitter) * 1000u;
  g_scheduled = true;
}

void load_release_keys() {
  const std::string all = FERRY_RELEASE_PUB_PEM;
  const std::string begin = "-----BEGIN PUBLIC KEY-----", end = "-----END PUBLIC KEY-----";
  for (size_t at = all.find(begin); at != std::string::npos; at = all.find(begin, at + 1)) {
    size_t stop = all.find(end, at);
    if (stop == std::string::npos) break;
    std::unique_ptr<ferry::PublicKey> k(new ferry::PublicKey);
    std::string err;
    if (k->load(all.substr(at, stop + end.size() - at) + "\n", &err)) {
      logf("ota", "trusting release key %s", k->keyid().c_str());
      g_trusted.push_back(k.get());
      g_keys.push_back(std::move(k));
    } else {
      logf("ota", "FERRY_RELEASE_PUB_PEM: %s", err.c_str());
    }
  }
  if (g_trusted.empty()) logf("ota", "no usable release key in secrets.h: updates are disabled");
}

void secure_client(NetworkClientSecure& c) {
  c.setCACert(g_id->ca_pem.c_str());
  c.setCertificate(g_id->cert_pem.c_str());
  c.setPrivateKey(g_id->key_pem.c_str());
  c.setHandshakeTimeout(FERRY_OTA_HTTP_TIMEOUT_MS / 1000);
}

std::string url_encode(const std::string& s) {
  static const char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += char(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

/// Progress report: MQTT when connected, else POST /ota/report (same schema,
/// README.md#topics-and-payloads).
void report(const std::string& deployment, const char* state, const std::string& version, const std::string& reason) {
  const std::string body = ferry::encode_ota_status(deployment, state, version, reason);
  logf("ota", "%s", body.c_str());
  if (mqtt_transport().connected() && mqtt_transport().publish(g_topics->ota_status, body, 1, false)) return;
  NetworkClientSecure net;
  secure_client(net);
  HTTPClient http;
  http.setTimeout(FERRY_OTA_HTTP_TIMEOUT_MS);
  if (!http.begin(net, String(FERRY_OTA_URL) + "/ota/report")) return;
  http.addHeader("Content-Type", "application/json");
  int code = http.POST(reinterpret_cast<uint8_t*>(const_cast<char*>(body.data())), body.size());
  if (code != 204) logf("ota", "POST /ota/report answered %d", code);
  http.end();
}

/// GET /ota/latest. Returns the HTTP status; on 200 `body` holds the envelope (bounded).
int fetch_envelope(std::string& body, uint32_t& retry_after_s) {
  NetworkClientSecure net;
  secure_client(net);
  HTTPClient http;
  http.useHTTP10(true);  // no chunked encoding: Content-Length bounds the read
  http.setTimeout(FERRY_OTA_HTTP_TIMEOUT_MS);
  const char* keep[] = {"Retry-After"};
  http.collectHeaders(keep, 1);
  std::string url = std::string(FERRY_OTA_URL) + "/ota/latest?hw=" + url_encode(FERRY_HW) +
                    "&version=" + url_encode(FERRY_FW_VERSION) +
                    "&secure_version=" + std::to_string(g_boot->secure_version_floor());
  if (!http.begin(net, url.c_str())) return -1;
  int code = http.GET();
  if (code == 503) retry_after_s = uint32_t(http.header("Retry-After").toInt());
  if (code == 200) {
    int len = http.getSize();
    if (len <= 0 || size_t(len) > ferry::kMaxEnvelopeBytes) {
      logf("ota", "envelope of %d bytes refused (limit %u)", len, unsigned(ferry::kMaxEnvelopeBytes));
      http.end();
      return -2;
    }
    body.resize(size_t(len));
    NetworkClient* s = http.getStreamPtr();
    size_t got = s->readBytes(&body[0], body.size());  // honours setTimeout
    body.resize(got);
    if (got != size_t(len)) code = -3;
  }
  http.end();
  return code;
}

/// Erases and writes one sector-aligned block of the inactive slot.
bool flash_write(const esp_partition_t* part, uint32_t offset, const uint8_t* data, size_t len) {
  esp_err_t e = esp_partition_erase_range(part, offset, ferry::kFlashSector);
  if (e == ESP_OK) e = esp_partition_write(part, offset, data, len);
  if (e != ESP_OK) logf("ota", "flash write at 0x%06lx failed: %s", static_cast<unsigned long>(offset), esp_err_to_name(e));
  return e == ESP_OK;
}

enum class Download { Done, Retry, Fatal };

/// One HTTP attempt from `written` onwards. Updates `written` and the verifier as sectors land.
Download download_once(const ferry::Manifest& m, const esp_partition_t* part, ferry::ImageVerifier& v,
                       uint64_t& written, uint64_t& last_checkpoint) {
  NetworkClientSecure net;
  secure_client(net);
  HTTPClient http;
  http.useHTTP10(true);
  http.setTimeout(FERRY_OTA_HTTP_TIMEOUT_MS);
  const char* keep[] = {"Content-Range"};
  http.collectHeaders(keep, 1);
  if (!http.begin(net, (std::string(FERRY_OTA_URL) + m.image_path).c_str())) return Download::Retry;
  if (written > 0) {
    http.addHeader("Range", ("bytes=" + std::to_string(written) + "-").c_str());
    http.addHeader("If-Range", ("\"" + m.image_sha256_hex + "\"").c_str());
  }
  int code = http.GET();
  if (code == 200 && written > 0) {
    // The server ignored the range (or the image changed): start over, hashing from byte 0.
    logf("ota", "server sent the whole image; restarting from 0");
    written = 0;
    last_checkpoint = 0;
    v.begin(m.image_size, m.image_sha256);
  } else if (code == 206) {
    String cr = http.header("Content-Range");
    if (!cr.startsWith(("bytes " + std::to_string(written) + "-").c_str())) {
      logf("ota", "unexpected Content-Range \"%s\"", cr.c_str());
      http.end();
      return Download::Retry;
    }
  } else if (code != 200) {
    logf("ota", "image GET answered %d", code);
    http.end();
    return code == 404 ? Download::Fatal : Download::Retry;
  }
  NetworkClient* s = http.getStreamPtr();
  std::unique_ptr<uint8_t[]> sector(new uint8_t[ferry::kFlashSector]);
  size_t fill = 0;
  uint32_t last_data = millis();
  Download result = Download::Retry;
  while (written + fill < m.image_size) {
    size_t want = size_t(std::min<uint64_t>(ferry::kFlashSector - fill, m.image_size - written - fill));
    int n = s->available() ? s->read(sector.get() + fill, want) : 0;
    if (n > 0) {
      fill += size_t(n);
      last_data = millis();
    } else if (!s->connected() || millis() - last_data > FERRY_OTA_HTTP_TIMEOUT_MS) {
      break;  // resume from the last whole sector on the next attempt
    } else {
      delay(2);
      continue;
    }
    if (fill == ferry::kFlashSector || written + fill == m.image_size) {
      if (!v.update(sector.get(), fill)) { result = Download::Fatal; break; }
      if (!flash_write(part, uint32_t(written), sector.get(), fill)) { result = Download::Fatal; break; }
      written += fill;
      fill = 0;
      if (ferry::checkpoint_due(written, last_checkpoint)) {
        ferry::save_checkpoint(nvs(), {m.image_sha256_hex, written});
        last_checkpoint = written;
        logf("ota", "%llu / %llu bytes", static_cast<unsigned long long>(written),
             static_cast<unsigned long long>(m.image_size));
      }
    }
  }
  if (written == m.image_size) result = Download::Done;
  http.end();
  if (result == Download::Retry) ferry::save_checkpoint(nvs(), {m.image_sha256_hex, written});
  return result;
}

/// Downloads, checks and activates `m`. Reboots on success; returns otherwise.
void install(const ferry::Manifest& m) {
  const esp_partition_t* part = esp_ota_get_next_update_partition(nullptr);
  if (!part) {
    report(m.deployment, "failed", m.version_text, "no OTA partition (flash with min_spiffs.csv)");
    return;
  }
  report(m.deployment, "downloading", m.version_text, "");
  mqtt_stop("OTA download");

  ferry::ImageVerifier v;
  v.begin(m.image_size, m.image_sha256);
  ferry::DownloadCheckpoint cp;
  uint64_t written = ferry::load_checkpoint(nvs(), cp) ? ferry::resume_offset(cp, m) : 0;
  if (written > 0) {
    // Re-hash what is already in flash so the final digest covers every byte of the slot.
    logf("ota", "resuming at %llu bytes", static_cast<unsigned long long>(written));
    std::unique_ptr<uint8_t[]> buf(new uint8_t[ferry::kFlashSector]);
    for (uint64_t at = 0; at < written; at += ferry::kFlashSector) {
      if (esp_partition_read(part, uint32_t(at), buf.get(), ferry::kFlashSector) != ESP_OK) {
        written = 0;
        v.begin(m.image_size, m.image_sha256);
        break;
      }
      v.update(buf.get(), ferry::kFlashSector);
    }
  }
  uint64_t last_checkpoint = written;
  Download d = Download::Retry;
  for (int attempt = 0; attempt < FERRY_OTA_ATTEMPTS && d == Download::Retry; ++attempt) {
    if (attempt) delay(ferry::backoff_delay_ms(uint32_t(attempt), 2000, 30000, rng().next_u32()));
    d = download_once(m, part, v, written, last_checkpoint);
  }
  if (d != Download::Done) {
    mqtt_resume();
    report(m.deployment, "failed", m.version_text, d == Download::Fatal ? "download refused" : "download incomplete; will resume");
    return;
  }
  ferry::ImageResult r = v.finish();
  ferry::clear_checkpoint(nvs());  // done either way: a bad image must not be resumed
  if (r != ferry::ImageResult::Ok) {
    mqtt_resume();
    report(m.deployment, "failed", m.version_text, ferry::image_result_name(r));
    return;
  }
  report(m.deployment, "verified", m.version_text, "");
  esp_err_t e = esp_ota_set_boot_partition(part);  // validates the image structure as well
  if (e != ESP_OK) {
    mqtt_resume();
    report(m.deployment, "failed", m.version_text, std::string("esp_ota_set_boot_partition: ") + esp_err_to_name(e));
    return;
  }
  ferry::save_pending_install(nvs(), {m.deployment, m.version_text, m.secure_version});
  logf("ota", "rebooting into %s", m.version_text.c_str());
  delay(200);
  ESP.restart();
}

void check_now() {
  uint64_t now_ms = 0;
  ferry::DeviceFacts facts;
  facts.hw = FERRY_HW;
  ferry::Version::parse(FERRY_FW_VERSION, facts.running);
  facts.secure_version = g_boot->secure_version_floor();
  facts.clock_valid = wall_clock(now_ms);
  facts.now_ms = now_ms;
  const esp_partition_t* part = esp_ota_get_next_update_partition(nullptr);
  facts.max_image_size = part ? part->size : 0;
  if (!facts.clock_valid) {
    logf("ota", "clock not set; update check postponed");
    return;
  }
  std::string body;
  uint32_t retry_after = 0;
  int code = fetch_envelope(body, retry_after);
  if (code == 204) return;  // up to date
  if (code == 503) {
    schedule(millis(), retry_after ? retry_after : 300);
    logf("ota", "server busy; asking again in about %lu s", static_cast<unsigned long>(retry_after ? retry_after : 300));
    return;
  }
  if (code != 200) {
    logf("ota", "GET /ota/latest failed (%d)", code);
    return;
  }
  ferry::OtaCheck c = ferry::check_envelope(body, g_trusted.data(), g_trusted.size(), facts);
  if (c.reject != ferry::OtaReject::None) {
    // An unverified manifest's deployment id is not trustworthy, so it is not echoed.
    const std::string deployment = c.manifest_parsed ? c.manifest.deployment : "unverified";
    const std::string version = c.manifest_parsed ? c.manifest.version_text : FERRY_FW_VERSION;
    const std::string key = deployment + "/" + ferry::reject_name(c.reject);
    logf("ota", "update refused (%s): %s", ferry::reject_name(c.reject), c.detail.c_str());
    if (key != g_last_refusal) {
      g_last_refusal = key;
      report(deployment, "failed", version, ferry::reject_name(c.reject));
    }
    return;
  }
  logf("ota", "update %s -> %s (%s, key %.16s...)", FERRY_FW_VERSION, c.manifest.version_text.c_str(),
       c.manifest.deployment.c_str(), c.keyid.c_str());
  install(c.manifest);
}

}  // namespace

ferry::ImageState ota_running_state() {
  esp_ota_img_states_t st;
  if (esp_ota_get_state_partition(esp_ota_get_running_partition(), &st) != ESP_OK) return ferry::ImageState::Unknown;
  if (st == ESP_OTA_IMG_PENDING_VERIFY) return ferry::ImageState::PendingVerify;
  if (st == ESP_OTA_IMG_VALID) return ferry::ImageState::Valid;
  return ferry::ImageState::Unknown;
}

bool ota_mark_valid() { return esp_ota_mark_app_valid_cancel_rollback() == ESP_OK; }

void ota_rollback_and_reboot() {
  esp_err_t e = esp_ota_mark_app_invalid_rollback_and_reboot();  // does not return on success
  logf("ota", "rollback failed: %s", esp_err_to_name(e));
}

void ota_begin(const Identity& id, const ferry::Topics& topics, ferry::BootVerifier& boot) {
  g_id = &id;
  g_topics = &topics;
  g_boot = &boot;
  load_release_keys();
}

void ota_poll(uint32_t now, bool wifi_up) {
  if (g_trusted.empty() || !wifi_up || !g_boot->ota_allowed()) return;
  if (!g_scheduled) schedule(now, FERRY_OTA_FIRST_CHECK_S);
  if (int32_t(now - g_next_check) < 0) return;
  schedule(now, FERRY_OTA_CHECK_INTERVAL_S);
  check_now();
}
