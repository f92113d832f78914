// Envelope, manifest and update-decision checks (ota-server/README.md#the-envelope), with envelopes
// signed on the fly by a fresh key per test (fakes/signer.h). test_vectors.cpp repeats the
// important cases with envelopes made by the TypeScript signer.
#include <string>
#include <vector>

#include "fakes/doctest.h"
#include "fakes/signer.h"
#include "ferry/manifest.h"

using ferry::OtaReject;
using fakes::ManifestFields;
using fakes::TestSigner;

namespace {

const uint64_t kNow = 1768000000000ULL;  // 2026-01-09, between issued_at and expires of ManifestFields

ferry::DeviceFacts device() {
  ferry::DeviceFacts d;
  d.hw = "esp32dev";
  REQUIRE(ferry::Version::parse("1.3.0", d.running));
  d.secure_version = 2;
  d.clock_valid = true;
  d.now_ms = kNow;
  d.max_image_size = 0x1E0000;
  return d;
}

ferry::OtaCheck check(const std::string& env, const TestSigner& s, const ferry::DeviceFacts& d = device()) {
  const ferry::PublicKey* trusted[] = {&s.public_key()};
  return ferry::check_envelope(env, trusted, 1, d);
}

std::string replace(std::string s, const std::string& from, const std::string& to) {
  auto at = s.find(from);
  REQUIRE(at != std::string::npos);
  return s.replace(at, from.size(), to);
}

}  // namespace

TEST_SUITE("ota") {
  TEST_CASE("accepts a correctly signed, newer manifest for this hardware") {
    TestSigner s;
    auto c = check(fakes::sign_envelope(s, ManifestFields{}.json()), s);
    CHECK_MESSAGE(c.reject == OtaReject::None, c.detail);
    CHECK(c.manifest.version_text == "1.4.0");
    CHECK(c.manifest.deployment == "esp32dev-1.4.0");
    CHECK(c.manifest.image_size == 1048576);
    CHECK(c.manifest.image_sha256[0] == 0xAA);
    CHECK(c.keyid == s.keyid());
  }

  TEST_CASE("rejects a manifest whose signature does not verify after one payload byte changed") {
    TestSigner s;
    std::string payload = ManifestFields{}.json();
    auto sig = s.sign(payload);
    std::string tampered = replace(payload, "1048576", "1048577");
    auto c = check(fakes::envelope_json(tampered, {{s.keyid(), sig}}), s);
    CHECK(c.reject == OtaReject::BadSignature);
    CHECK_FALSE(c.manifest_parsed);
  }

  TEST_CASE("rejects an envelope signed by another key, even when it claims the trusted keyid") {
    TestSigner trusted, attacker;
    std::string payload = ManifestFields{}.json();
    auto own = check(fakes::sign_envelope(attacker, payload), trusted);
    CHECK(own.reject == OtaReject::BadSignature);
    CHECK(own.detail.find("no signature is by a trusted release key") != std::string::npos);
    auto forged = check(fakes::envelope_json(payload, {{trusted.keyid(), attacker.sign(payload)}}), trusted);
    CHECK(forged.reject == OtaReject::BadSignature);
    CHECK(forged.detail.find("does not verify") != std::string::npos);
  }

  TEST_CASE("rejects a truncated signature") {
    TestSigner s;
    std::string payload = ManifestFields{}.json();
    auto sig = s.sign(payload);
    for (std::size_t cut : {std::size_t(1), std::size_t(10), sig.size() - 1}) {
      auto shorter = sig;
      shorter.resize(sig.size() - cut);
      CHECK(check(fakes::envelope_json(payload, {{s.keyid(), shorter}}), s).reject == OtaReject::BadSignature);
    }
  }

  TEST_CASE("accepts when any trusted signature verifies (key rotation)") {
    TestSigner old_key, new_key, stranger;
    std::string payload = ManifestFields{}.json();
    std::string env = fakes::envelope_json(payload, {{stranger.keyid(), stranger.sign(payload)},
                                                     {new_key.keyid(), new_key.sign(payload)}});
    const ferry::PublicKey* trusted[] = {&old_key.public_key(), &new_key.public_key()};
    auto c = ferry::check_envelope(env, trusted, 2, device());
    CHECK_MESSAGE(c.reject == OtaReject::None, c.detail);
    CHECK(c.keyid == new_key.keyid());
  }

  TEST_CASE("ignores entries by unknown keys, whatever their signature holds") {
    TestSigner s, stranger;
    std::string payload = ManifestFields{}.json();
    std::string env = "{\"payload\":\"" + fakes::b64(payload) + "\",\"signatures\":[{\"keyid\":\"" +
                      stranger.keyid() + "\",\"sig\":\"not*base64\"}," +
                      fakes::sign_envelope(s, payload).substr(fakes::sign_envelope(s, payload).find("[{") + 1);
    auto c = check(env, s);
    CHECK_MESSAGE(c.reject == OtaReject::None, c.detail);
  }

  TEST_CASE("rejects malformed envelopes before touching crypto") {
    TestSigner s;
    std::string payload = ManifestFields{}.json();
    std::string good = fakes::sign_envelope(s, payload);
    const std::string bad[] = {
        "",
        "not json",
        "[]",
        good.substr(0, good.size() - 1),
        replace(good, "\"payload\"", "\"payloads\""),
        replace(good, "{\"payload\"", "{\"extra\":1,\"payload\""),
        "{\"payload\":\"" + fakes::b64(payload) + "\",\"signatures\":[]}",
        "{\"payload\":\"" + fakes::b64(payload) + "\"}",
        "{\"payload\":\"\",\"signatures\":[{\"keyid\":\"" + s.keyid() + "\",\"sig\":\"AAAA\"}]}",
        replace(good, "\",\"signatures\"", "=\",\"signatures\""),  // broken base64 padding
        replace(good, "\"keyid\":\"", "\"keyid\":\"A"),            // not 64 lower-case hex
        replace(good, "\"sig\":\"", "\"sig\":\"*"),                // not base64
        replace(good, "\"sig\":", "\"sig\":1,\"x\":"),              // unknown member
        good + good,
    };
    for (const auto& env : bad) {
      auto c = check(env, s);
      CHECK_MESSAGE(c.reject == OtaReject::MalformedEnvelope, env, " -> ", ferry::reject_name(c.reject));
    }
    std::string nine = "{\"payload\":\"" + fakes::b64(payload) + "\",\"signatures\":[";
    for (int i = 0; i < 9; ++i) nine += std::string(i ? "," : "") + "{\"keyid\":\"" + s.keyid() + "\",\"sig\":\"AAAA\"}";
    CHECK(check(nine + "]}", s).reject == OtaReject::MalformedEnvelope);
  }

  TEST_CASE("rejects a signed payload that is not a schema 1 manifest") {
    TestSigner s;
    ManifestFields f;
    const std::string bad[] = {
        "[1,2]",
        "{}",
        replace(f.json(), "\"schema\":1", "\"schema\":2"),
        replace(f.json(), "\"schema\":1", "\"schema\":\"1\""),
        replace(f.json(), "\"version\":\"1.4.0\"", "\"version\":\"1.4\""),
        replace(f.json(), "\"version\":\"1.4.0\"", "\"version\":\"01.4.0\""),
        replace(f.json(), "\"hw\":\"esp32dev\"", "\"hw\":\"ESP32\""),
        replace(f.json(), "\"secure_version\":2", "\"secure_version\":-1"),
        replace(f.json(), "\"secure_version\":2", "\"secure_version\":4294967296"),
        replace(f.json(), "\"expires\":1769817600000", "\"expires\":\"2026-01-31\""),
        replace(f.json(), "\"size\":1048576", "\"size\":0"),
        replace(f.json(), "\"path\":\"/ota/images/", "\"path\":\"/elsewhere/"),
        replace(f.json(), "\"deployment\":\"esp32dev-1.4.0\"", "\"deployment\":\"-x\""),
        replace(f.json(), "{\"schema\":1", "{\"schema\":1,\"url\":\"http://evil\""),
        replace(f.json(), "{\"schema\":1", "{\"schema\":1,\"schema\":1"),
        replace(f.json(), "\"sha256\":\"" + f.sha256 + "\"", "\"sha256\":\"" + std::string(64, 'A') + "\""),
        f.json().substr(0, 40),
    };
    for (const auto& m : bad) {
      auto c = check(fakes::sign_envelope(s, m), s);
      CHECK_MESSAGE(c.reject == OtaReject::MalformedManifest, m, " -> ", ferry::reject_name(c.reject));
    }
  }

  TEST_CASE("accepts both rollout forms and refuses other shapes") {
    TestSigner s;
    for (const char* ok : {"{\"percent\":50}", "{\"percent\":0}", "{\"devices\":[\"node-1\",\"node-2\"]}"}) {
      ManifestFields f;
      f.rollout = ok;
      CHECK_MESSAGE(check(fakes::sign_envelope(s, f.json()), s).reject == OtaReject::None, ok);
    }
    for (const char* bad : {"{\"percent\":101}", "{\"devices\":[]}", "{\"devices\":[\"Node\"]}", "{\"devices\":[\"a\",\"a\"]}",
                            "{\"percent\":5,\"devices\":[\"a\"]}", "{}", "50"}) {
      ManifestFields f;
      f.rollout = bad;
      CHECK_MESSAGE(check(fakes::sign_envelope(s, f.json()), s).reject == OtaReject::MalformedManifest, bad);
    }
  }

  TEST_CASE("refuses a manifest for other hardware") {
    TestSigner s;
    ManifestFields f;
    f.hw = "esp32c3";
    CHECK(check(fakes::sign_envelope(s, f.json()), s).reject == OtaReject::WrongHw);
  }

  TEST_CASE("refuses an expired manifest, including at the exact expiry millisecond") {
    TestSigner s;
    ManifestFields f;
    auto d = device();
    d.now_ms = f.expires;
    CHECK(check(fakes::sign_envelope(s, f.json()), s, d).reject == OtaReject::Expired);
    d.now_ms = f.expires - 1;
    CHECK(check(fakes::sign_envelope(s, f.json()), s, d).reject == OtaReject::None);
  }

  TEST_CASE("refuses when the wall clock is not set, since expiry cannot be checked") {
    TestSigner s;
    auto d = device();
    d.clock_valid = false;
    CHECK(check(fakes::sign_envelope(s, ManifestFields{}.json()), s, d).reject == OtaReject::ClockNotSet);
  }

  TEST_CASE("refuses a lower secure_version and accepts an equal or higher one") {
    TestSigner s;
    ManifestFields f;
    auto d = device();
    d.secure_version = 3;
    CHECK(check(fakes::sign_envelope(s, f.json()), s, d).reject == OtaReject::SecureVersionTooLow);
    d.secure_version = 2;
    CHECK(check(fakes::sign_envelope(s, f.json()), s, d).reject == OtaReject::None);
  }

  TEST_CASE("refuses a downgrade and a re-install of the running version") {
    TestSigner s;
    auto d = device();
    for (const char* running : {"1.4.0", "1.4.1", "2.0.0", "1.4.0+other-build"}) {
      REQUIRE(ferry::Version::parse(running, d.running));
      CHECK_MESSAGE(check(fakes::sign_envelope(s, ManifestFields{}.json()), s, d).reject == OtaReject::NotNewer, running);
    }
    REQUIRE(ferry::Version::parse("1.4.0-rc.1", d.running));
    CHECK(check(fakes::sign_envelope(s, ManifestFields{}.json()), s, d).reject == OtaReject::None);
  }

  TEST_CASE("refuses an image larger than the OTA slot") {
    TestSigner s;
    ManifestFields f;
    f.size = 0x1E0001;
    CHECK(check(fakes::sign_envelope(s, f.json()), s).reject == OtaReject::ImageTooLarge);
    f.size = 0x1E0000;
    CHECK(check(fakes::sign_envelope(s, f.json()), s).reject == OtaReject::None);
  }

  TEST_CASE("reports the most fundamental refusal first") {
    TestSigner s;
    ManifestFields f;
    f.hw = "other";
    f.version = "0.1.0";
    f.secure_version = 0;
    auto d = device();
    d.now_ms = f.expires + 1;
    CHECK(check(fakes::sign_envelope(s, f.json()), s, d).reject == OtaReject::WrongHw);
    f.hw = "esp32dev";
    CHECK(check(fakes::sign_envelope(s, f.json()), s, d).reject == OtaReject::Expired);
  }

  TEST_CASE("reason names match the signer's ManifestRejectReason strings") {
    CHECK(std::string(ferry::reject_name(OtaReject::MalformedEnvelope)) == "malformed_envelope");
    CHECK(std::string(ferry::reject_name(OtaReject::BadSignature)) == "bad_signature");
    CHECK(std::string(ferry::reject_name(OtaReject::MalformedManifest)) == "malformed_manifest");
    CHECK(std::string(ferry::reject_name(OtaReject::WrongHw)) == "wrong_hw");
    CHECK(std::string(ferry::reject_name(OtaReject::Expired)) == "expired");
    CHECK(std::string(ferry::reject_name(OtaReject::SecureVersionTooLow)) == "secure_version_too_low");
    CHECK(std::string(ferry::reject_name(OtaReject::NotNewer)) == "not_newer");
    CHECK(std::string(ferry::reject_name(OtaReject::ImageTooLarge)) == "image_too_large");
  }

  TEST_CASE("device and hw ids follow ^[a-z0-9][a-z0-9_-]{0,62}$") {
    CHECK(ferry::is_valid_id("node-1"));
    CHECK(ferry::is_valid_id("a"));
    CHECK(ferry::is_valid_id(std::string(63, 'a')));
    CHECK_FALSE(ferry::is_valid_id(std::string(64, 'a')));
    CHECK_FALSE(ferry::is_valid_id(""));
    CHECK_FALSE(ferry::is_valid_id("-a"));
    CHECK_FALSE(ferry::is_valid_id("Node"));
    CHECK_FALSE(ferry::is_valid_id("a/b"));
    CHECK_FALSE(ferry::is_valid_id("a+"));
  }
}
