#include "ferry/telemetry.h"

#include <algorithm>
#include <cstdio>

#include "ferry/json.h"

namespace ferry {

std::string encode_telemetry(const Reading& r) {
  char buf[160];
  int n = std::snprintf(buf, sizeof buf, "{\"seq\":%lu,\"boot\":%lu", static_cast<unsigned long>(r.seq),
                        static_cast<unsigned long>(r.boot));
  std::string out(buf, std::size_t(n));
  if (r.has_ts) {
    n = std::snprintf(buf, sizeof buf, ",\"ts\":%llu", static_cast<unsigned long long>(r.ts_ms));
    out.append(buf, std::size_t(n));
  }
  n = std::snprintf(buf, sizeof buf, ",\"pot\":%u,\"switch\":%u", unsigned(std::min<uint16_t>(r.pot, 4095)),
                    r.sw ? 1u : 0u);
  out.append(buf, std::size_t(n));
  if (r.has_led) {
    n = std::snprintf(buf, sizeof buf, ",\"led\":%u", unsigned(std::min<uint8_t>(r.led, 100)));
    out.append(buf, std::size_t(n));
  }
  out += '}';
  return out;
}

std::string encode_led_state(const std::string& cmd_id, int brightness) {
  std::string out = "{\"cmd\":";
  json::append_string(out, cmd_id);
  out += ",\"brightness\":" + std::to_string(std::clamp(brightness, 0, 100)) + "}";
  return out;
}

std::string encode_ota_status(const std::string& deployment, const std::string& state, const std::string& version,
                              const std::string& reason) {
  std::string out = "{\"deployment\":";
  json::append_string(out, deployment);
  out += ",\"state\":";
  json::append_string(out, state);
  out += ",\"version\":";
  json::append_string(out, version);
  if (!reason.empty()) {
    out += ",\"reason\":";
    json::append_string(out, reason);
  }
  out += '}';
  return out;
}

Topics::Topics(const std::string& id)
    : telemetry("sensors/" + id + "/telemetry"),
      led_set("sensors/" + id + "/led/set"),
      led_state("sensors/" + id + "/led/state"),
      status("sensors/" + id + "/status"),
      ota_status("sensors/" + id + "/ota/status"),
      ack("sensors/" + id + "/ack") {}

uint32_t next_boot_count(Storage& s) {
  uint32_t n = s.get_u32("boot", 0) + 1;
  if (n == 0) n = 1;  // wrapped after 2^32 boots; 0 is never a valid boot number
  s.put_u32("boot", n);
  return n;
}

}  // namespace ferry
