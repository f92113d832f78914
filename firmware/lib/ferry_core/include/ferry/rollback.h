// The pending-verify -> valid / rollback state machine around an OTA reboot.
//
// ESP-IDF boots a freshly installed image once in PENDING_VERIFY
// (docs/firmware-notes.md#app-rollback). This code decides when the glue should confirm it
// (esp_ota_mark_app_valid_cancel_rollback) or give up
// (esp_ota_mark_app_invalid_rollback_and_reboot), and remembers across the reboot what to report on
// `sensors/<id>/ota/status`. Arduino confirms every image before setup() unless the sketch defines
// `extern "C" bool verifyRollbackLater() { return true; }`; src/ota.cpp does.
//
// Lifecycle (what survives in Storage is marked [nvs]):
//   old image: download ok -> save PendingInstall [nvs] -> set boot partition -> reboot
//   new image, PENDING_VERIFY: self-test = Wi-Fi up, broker connected, one QoS 1 publish acked,
//     all before the deadline -> MarkValid -> glue confirms -> marked_valid(): secure_version floor
//     raised [nvs], report "installed"
//   deadline passes first -> Rollback(reason) -> rolling_back() stores the reason [nvs] -> glue
//     marks invalid and reboots -> old image finds PendingInstall with another version -> reports
//     "rolled-back" with the stored reason
//   power cut during the self-test -> bootloader reverts by itself -> same "rolled-back" report,
//     with a reason saying the new image never confirmed.
#pragma once

#include <cstdint>
#include <string>

#include "ferry/ports.h"

namespace ferry {

enum class ImageState { Valid, PendingVerify, Unknown };
enum class BootAction { None, MarkValid, Rollback };

/// What the old image records before rebooting into the new one.
struct PendingInstall {
  std::string deployment;
  std::string version;
  uint32_t secure_version = 0;
};
bool save_pending_install(Storage& s, const PendingInstall& p);
bool load_pending_install(const Storage& s, PendingInstall& out);

class BootVerifier {
 public:
  struct Options {
    std::string running_version;
    ImageState state = ImageState::Unknown;
    uint32_t compiled_secure_version = 0;  ///< FERRY_SECURE_VERSION of this build
    uint32_t self_test_timeout_ms = 120000;
  };

  BootVerifier(Storage& storage, const Options& opts, uint32_t now_ms);

  // Self-test milestones, reported by the glue as they happen.
  void wifi_up() { wifi_ = true; }
  void broker_connected() { broker_ = true; }
  void publish_acked() { acked_ = true; }

  /// MarkValid once every milestone is in (only while pending verify), Rollback after the
  /// deadline, otherwise None. Returns each action once.
  BootAction poll(uint32_t now_ms);
  /// Why poll() returned Rollback.
  const std::string& rollback_reason() const { return reason_; }

  /// The glue confirmed the image: raise the anti-rollback floor and queue "installed".
  void marked_valid();
  /// The glue is about to roll back: persist why, so the previous image can report it.
  void rolling_back();

  bool pending_verify() const { return phase_ == Phase::SelfTest; }
  /// OTA must not start while this image is unconfirmed (esp_ota_begin would refuse anyway).
  bool ota_allowed() const { return phase_ != Phase::SelfTest && phase_ != Phase::RollingBack; }
  /// max(compiled-in secure_version, the floor stored in NVS).
  uint32_t secure_version_floor() const { return floor_; }

  /// A status report to publish once connected: state "installed" or "rolled-back".
  bool report(std::string& json) const;
  /// The report was acknowledged: forget the pending install.
  void report_sent();

 private:
  enum class Phase { Idle, SelfTest, Confirmed, RollingBack };
  Storage& storage_;
  Options opts_;
  Phase phase_ = Phase::Idle;
  uint32_t started_ms_ = 0;
  bool wifi_ = false, broker_ = false, acked_ = false;
  bool have_pending_ = false;
  PendingInstall pending_;
  uint32_t floor_ = 0;
  std::string reason_;
  std::string report_state_;  // "" = nothing to report
};

}  // namespace ferry
