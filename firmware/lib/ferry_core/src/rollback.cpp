#include "ferry/rollback.h"

#include <algorithm>

#include "ferry/json.h"
#include "ferry/telemetry.h"

namespace ferry {
namespace {
constexpr const char* kPendingKey = "ota_pend";
constexpr const char* kReasonKey = "ota_rbwhy";
constexpr const char* kFloorKey = "ota_secver";
}  // namespace

bool save_pending_install(Storage& s, const PendingInstall& p) {
  std::string raw = "{\"deployment\":";
  json::append_string(raw, p.deployment);
  raw += ",\"version\":";
  json::append_string(raw, p.version);
  raw += ",\"secure_version\":" + std::to_string(p.secure_version) + "}";
  return s.erase(kReasonKey) && s.put(kPendingKey, raw);
}

bool load_pending_install(const Storage& s, PendingInstall& out) {
  out = PendingInstall{};
  std::string raw;
  json::Value v;
  if (!s.get(kPendingKey, raw) || !json::parse(raw, v)) return false;
  const json::Value* d = v.get("deployment");
  const json::Value* ver = v.get("version");
  const json::Value* sv = v.get("secure_version");
  uint64_t n = 0;
  if (!d || !d->is(json::Type::String) || !ver || !ver->is(json::Type::String) || !sv || !sv->as_uint(n, 0xFFFFFFFFu)) {
    return false;
  }
  out.deployment = d->text;
  out.version = ver->text;
  out.secure_version = uint32_t(n);
  return true;
}

BootVerifier::BootVerifier(Storage& storage, const Options& opts, uint32_t now_ms)
    : storage_(storage), opts_(opts), started_ms_(now_ms) {
  floor_ = std::max(opts_.compiled_secure_version, storage_.get_u32(kFloorKey, 0));
  have_pending_ = load_pending_install(storage_, pending_);
  if (opts_.state == ImageState::PendingVerify) {
    phase_ = Phase::SelfTest;
    return;
  }
  if (!have_pending_) return;
  if (pending_.version == opts_.running_version) {
    // Confirmed on an earlier boot, but the "installed" report never got its PUBACK.
    floor_ = std::max(floor_, pending_.secure_version);
    storage_.put_u32(kFloorKey, floor_);
    report_state_ = "installed";
  } else {
    // We are the previous image again: either our own rollback, or the bootloader reverted
    // because the new image reset before confirming.
    if (!storage_.get(kReasonKey, reason_) || reason_.empty()) {
      reason_ = "new image did not confirm itself; the bootloader restored the previous one";
    }
    report_state_ = "rolled-back";
  }
}

BootAction BootVerifier::poll(uint32_t now_ms) {
  if (phase_ != Phase::SelfTest) return BootAction::None;
  if (wifi_ && broker_ && acked_) {
    phase_ = Phase::Confirmed;
    return BootAction::MarkValid;
  }
  if (now_ms - started_ms_ >= opts_.self_test_timeout_ms) {
    reason_ = "self-test timed out after " + std::to_string(opts_.self_test_timeout_ms / 1000) + " s without ";
    reason_ += !wifi_ ? "Wi-Fi" : !broker_ ? "a broker connection" : "an acknowledged publish";
    phase_ = Phase::RollingBack;
    return BootAction::Rollback;
  }
  return BootAction::None;
}

void BootVerifier::marked_valid() {
  phase_ = Phase::Confirmed;
  floor_ = std::max(floor_, opts_.compiled_secure_version);
  if (have_pending_ && pending_.version == opts_.running_version) {
    floor_ = std::max(floor_, pending_.secure_version);
    report_state_ = "installed";
  }
  storage_.put_u32(kFloorKey, floor_);
}

void BootVerifier::rolling_back() {
  phase_ = Phase::RollingBack;
  storage_.put(kReasonKey, reason_);
}

bool BootVerifier::report(std::string& out) const {
  if (report_state_.empty() || !have_pending_) return false;
  out = encode_ota_status(pending_.deployment, report_state_, pending_.version,
                          report_state_ == "rolled-back" ? reason_ : std::string());
  return true;
}

void BootVerifier::report_sent() {
  if (report_state_.empty()) return;
  storage_.erase(kPendingKey);
  storage_.erase(kReasonKey);
  report_state_.clear();
  have_pending_ = false;
}

}  // namespace ferry
