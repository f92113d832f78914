// The pending-verify state machine across simulated reboots: one FakeStorage plays NVS, and each
// "boot" constructs a new BootVerifier over it.
#include <string>

#include "fakes/doctest.h"
#include "fakes/fakes.h"
#include "ferry/json.h"
#include "ferry/rollback.h"

using ferry::BootAction;
using ferry::BootVerifier;
using ferry::ImageState;

namespace {

BootVerifier::Options boot(const char* version, ImageState st, uint32_t secure = 1) {
  BootVerifier::Options o;
  o.running_version = version;
  o.state = st;
  o.compiled_secure_version = secure;
  o.self_test_timeout_ms = 60000;
  return o;
}

// The old image finished a download and is about to reboot into 1.4.0.
void install_pending(fakes::FakeStorage& nvs) {
  REQUIRE(ferry::save_pending_install(nvs, {"esp32dev-1.4.0", "1.4.0", 2}));
}

std::string field(const std::string& json, const char* key) {
  ferry::json::Value v;
  REQUIRE(ferry::json::parse(json, v));
  const auto* f = v.get(key);
  return f ? f->text : "<absent>";
}

}  // namespace

TEST_SUITE("rollback") {
  TEST_CASE("marks the new image valid only after Wi-Fi, broker and an acknowledged publish") {
    fakes::FakeStorage nvs;
    install_pending(nvs);
    BootVerifier b(nvs, boot("1.4.0", ImageState::PendingVerify, 2), 1000);
    CHECK(b.pending_verify());
    CHECK_FALSE(b.ota_allowed());
    CHECK(b.poll(1000) == BootAction::None);
    b.wifi_up();
    b.broker_connected();
    CHECK(b.poll(2000) == BootAction::None);
    b.publish_acked();
    CHECK(b.poll(3000) == BootAction::MarkValid);
    CHECK(b.poll(3001) == BootAction::None);  // once
    b.marked_valid();
    CHECK(b.ota_allowed());
    CHECK(b.secure_version_floor() == 2);
    CHECK(nvs.kv["ota_secver"] == "2");
    std::string report;
    REQUIRE(b.report(report));
    CHECK(field(report, "state") == "installed");
    CHECK(field(report, "version") == "1.4.0");
    CHECK(field(report, "deployment") == "esp32dev-1.4.0");
    CHECK(field(report, "reason") == "<absent>");
    b.report_sent();
    CHECK_FALSE(b.report(report));
    CHECK(nvs.kv.count("ota_pend") == 0);
  }

  TEST_CASE("rolls back when the self-test misses its deadline, and the old image reports why") {
    fakes::FakeStorage nvs;
    install_pending(nvs);
    {
      BootVerifier b(nvs, boot("1.4.0", ImageState::PendingVerify, 2), 5000);
      b.wifi_up();
      CHECK(b.poll(64999) == BootAction::None);
      CHECK(b.poll(65000) == BootAction::Rollback);
      CHECK(b.rollback_reason().find("broker") != std::string::npos);
      b.rolling_back();
      CHECK_FALSE(b.ota_allowed());
      CHECK(nvs.kv.count("ota_secver") == 0);  // the floor is never raised for an image that failed
    }
    // Reboot into the previous image (1.3.0), now valid.
    BootVerifier old(nvs, boot("1.3.0", ImageState::Valid, 1), 0);
    CHECK_FALSE(old.pending_verify());
    CHECK(old.ota_allowed());
    CHECK(old.secure_version_floor() == 1);
    std::string report;
    REQUIRE(old.report(report));
    CHECK(field(report, "state") == "rolled-back");
    CHECK(field(report, "version") == "1.4.0");
    CHECK(field(report, "reason").find("self-test timed out") != std::string::npos);
    old.report_sent();
    BootVerifier again(nvs, boot("1.3.0", ImageState::Valid, 1), 0);
    CHECK_FALSE(again.report(report));
  }

  TEST_CASE("reports a bootloader rollback after a reset during the self-test") {
    fakes::FakeStorage nvs;
    install_pending(nvs);
    { BootVerifier crashed(nvs, boot("1.4.0", ImageState::PendingVerify, 2), 0); }  // reset before any poll
    BootVerifier old(nvs, boot("1.3.0", ImageState::Valid), 0);
    std::string report;
    REQUIRE(old.report(report));
    CHECK(field(report, "state") == "rolled-back");
    CHECK(field(report, "reason").find("did not confirm") != std::string::npos);
  }

  TEST_CASE("re-sends \"installed\" after a reboot that came before the report's PUBACK") {
    fakes::FakeStorage nvs;
    install_pending(nvs);
    {
      BootVerifier b(nvs, boot("1.4.0", ImageState::PendingVerify, 2), 0);
      b.wifi_up();
      b.broker_connected();
      b.publish_acked();
      REQUIRE(b.poll(1) == BootAction::MarkValid);
      b.marked_valid();
    }
    BootVerifier next(nvs, boot("1.4.0", ImageState::Valid, 2), 0);
    std::string report;
    REQUIRE(next.report(report));
    CHECK(field(report, "state") == "installed");
    CHECK(next.secure_version_floor() == 2);
  }

  TEST_CASE("keeps the highest secure_version floor from NVS, the build and the install") {
    fakes::FakeStorage nvs;
    nvs.kv["ota_secver"] = "5";
    BootVerifier b(nvs, boot("1.0.0", ImageState::Valid, 3), 0);
    CHECK(b.secure_version_floor() == 5);
    BootVerifier c(nvs, boot("1.0.0", ImageState::Valid, 7), 0);
    CHECK(c.secure_version_floor() == 7);
  }

  TEST_CASE("an ordinary boot with nothing pending has nothing to report and allows OTA") {
    fakes::FakeStorage nvs;
    BootVerifier b(nvs, boot("1.3.0", ImageState::Valid), 0);
    std::string report;
    CHECK_FALSE(b.report(report));
    CHECK(b.ota_allowed());
    CHECK(b.poll(999999) == BootAction::None);
  }

  TEST_CASE("a corrupt pending record is ignored") {
    fakes::FakeStorage nvs;
    nvs.kv["ota_pend"] = "{\"deployment\":1}";
    BootVerifier b(nvs, boot("1.3.0", ImageState::Valid), 0);
    std::string report;
    CHECK_FALSE(b.report(report));
  }
}
