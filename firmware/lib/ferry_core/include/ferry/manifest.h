// Signed OTA envelopes and manifests (ota-server/README.md#the-envelope), and the update decision.
//
// Order of checks, as in ESP-IDF's advanced_https_ota example (docs/firmware-notes.md#ota-order):
// verify the envelope signature over the exact payload bytes, only then parse those bytes as a
// manifest, then decide whether this device should install it. The image itself is checked later,
// while it streams (update.h).
//
// Reason strings are stable: they are the `reason` in `sensors/<id>/ota/status` and the same names
// as ota-server/src/manifest/errors.ts (ManifestRejectReason).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/crypto.h"
#include "ferry/version.h"

namespace ferry {

enum class OtaReject {
  None,
  MalformedEnvelope,     ///< "malformed_envelope"
  BadSignature,          ///< "bad_signature"
  MalformedManifest,     ///< "malformed_manifest"
  WrongHw,               ///< "wrong_hw"
  Expired,               ///< "expired"
  SecureVersionTooLow,   ///< "secure_version_too_low"
  NotNewer,              ///< "not_newer"
  ImageTooLarge,         ///< "image_too_large"
  ClockNotSet,           ///< "clock_not_set": expiry cannot be checked without wall-clock time
};

/// The stable machine-readable name of a refusal ("" for None).
const char* reject_name(OtaReject r);

/// Limits mirrored from ota-server/src/manifest/envelope.ts.
constexpr std::size_t kMaxPayloadBytes = 32 * 1024;
constexpr std::size_t kMaxEnvelopeBytes = 48 * 1024;
constexpr std::size_t kMaxSignatures = 8;

/// The exact manifest bytes, released only after a trusted signature verified over them.
struct VerifiedPayload {
  std::vector<uint8_t> bytes;
  std::string keyid;  ///< which trusted key verified it
};

/// Checks the envelope `{"payload": b64, "signatures": [{"keyid": hex, "sig": b64 DER}]}`.
/// Accepts when any signature whose keyid names one of `trusted` verifies over the decoded payload.
/// Returns None, MalformedEnvelope or BadSignature; `detail` explains for people.
OtaReject verify_envelope(std::string_view envelope_json, const PublicKey* const* trusted, std::size_t n_trusted,
                          VerifiedPayload& out, std::string* detail = nullptr);

/// Manifest schema 1. Times are Unix epoch milliseconds.
struct Manifest {
  uint32_t schema = 0;
  std::string deployment;
  std::string hw;
  std::string version_text;
  Version version;
  uint32_t secure_version = 0;
  uint64_t issued_at_ms = 0;
  uint64_t expires_ms = 0;
  std::string image_path;
  uint64_t image_size = 0;
  Digest image_sha256{};
  std::string image_sha256_hex;
};

/// Parses verified payload bytes. Unknown fields are refused (like the signer's schema), so a newer
/// format is never half-understood. Returns None or MalformedManifest.
OtaReject parse_manifest(const uint8_t* bytes, std::size_t len, Manifest& out, std::string* detail = nullptr);

/// What the device knows about itself when deciding.
struct DeviceFacts {
  std::string hw;                 ///< e.g. "esp32dev"
  Version running;                ///< version of the running image
  uint32_t secure_version = 0;    ///< own anti-rollback counter (max of compiled-in and NVS floor)
  bool clock_valid = false;       ///< false until SNTP answered
  uint64_t now_ms = 0;            ///< epoch ms, meaningful only when clock_valid
  uint64_t max_image_size = 0;    ///< size of the OTA slot; 0 = no limit (host tool)
  bool check_hw = true;           ///< the host tool can skip the hw check when --hw is absent
};

/// The policy: right hardware, not expired, secure_version >= own, strictly newer version,
/// fits the slot. Checked in that order so the first reason is the most fundamental one.
OtaReject decide_update(const Manifest& m, const DeviceFacts& device, std::string* detail = nullptr);

/// The whole pre-download check: envelope, manifest, decision.
struct OtaCheck {
  OtaReject reject = OtaReject::None;
  std::string detail;
  Manifest manifest;
  std::string keyid;
  bool manifest_parsed = false;
};
OtaCheck check_envelope(std::string_view envelope_json, const PublicKey* const* trusted, std::size_t n_trusted,
                        const DeviceFacts& device);

/// True for ids matching ^[a-z0-9][a-z0-9_-]{0,62}$ (device ids and hw ids,
/// README.md#topics-and-payloads).
bool is_valid_id(std::string_view id);

}  // namespace ferry
