#include "ferry/manifest.h"

#include <cstdio>

#include "ferry/codec.h"
#include "ferry/json.h"

namespace ferry {
namespace {

OtaReject fail(OtaReject r, std::string* detail, const std::string& why) {
  if (detail) *detail = why;
  return r;
}

bool is_lower_hex(std::string_view s, std::size_t len) {
  if (s.size() != len) return false;
  for (char c : s) if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

// ^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$ (DEPLOYMENT_PATTERN on the signing side)
bool is_valid_deployment(std::string_view s) {
  if (s.empty() || s.size() > 128) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '+' && c != '-'))) return false;
  }
  return true;
}

bool only_keys(const json::Value& obj, std::initializer_list<const char*> allowed, std::string& unknown) {
  for (const auto& m : obj.members) {
    bool ok = false;
    for (const char* k : allowed) if (m.first == k) ok = true;
    if (!ok) {
      unknown = m.first;
      return false;
    }
  }
  return true;
}

std::string u64s(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

const char* reject_name(OtaReject r) {
  switch (r) {
    case OtaReject::None: return "";
    case OtaReject::MalformedEnvelope: return "malformed_envelope";
    case OtaReject::BadSignature: return "bad_signature";
    case OtaReject::MalformedManifest: return "malformed_manifest";
    case OtaReject::WrongHw: return "wrong_hw";
    case OtaReject::Expired: return "expired";
    case OtaReject::SecureVersionTooLow: return "secure_version_too_low";
    case OtaReject::NotNewer: return "not_newer";
    case OtaReject::ImageTooLarge: return "image_too_large";
    case OtaReject::ClockNotSet: return "clock_not_set";
  }
  return "unknown";
}

bool is_valid_id(std::string_view id) {
  if (id.empty() || id.size() > 63) return false;
  for (std::size_t i = 0; i < id.size(); ++i) {
    char c = id[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && (c == '_' || c == '-'));
    if (!ok) return false;
  }
  return true;
}

OtaReject verify_envelope(std::string_view envelope_json, const PublicKey* const* trusted, std::size_t n_trusted,
                          VerifiedPayload& out, std::string* detail) {
  out = VerifiedPayload{};
  const auto M = OtaReject::MalformedEnvelope;
  if (envelope_json.size() > kMaxEnvelopeBytes) {
    return fail(M, detail, "envelope is larger than " + u64s(kMaxEnvelopeBytes) + " bytes");
  }
  json::Value env;
  std::string err;
  json::Limits lim;
  lim.max_bytes = kMaxEnvelopeBytes;
  lim.max_depth = 4;
  if (!json::parse(envelope_json, env, &err, lim)) return fail(M, detail, "envelope is not valid JSON: " + err);
  if (!env.is(json::Type::Object)) return fail(M, detail, "envelope is not a JSON object");
  std::string unknown;
  if (!only_keys(env, {"payload", "signatures"}, unknown)) {
    return fail(M, detail, "envelope has an unknown field \"" + unknown + "\"");
  }
  const json::Value* payload = env.get("payload");
  const json::Value* sigs = env.get("signatures");
  if (!payload || !payload->is(json::Type::String)) return fail(M, detail, "envelope has no \"payload\" string");
  if (!sigs || !sigs->is(json::Type::Array)) return fail(M, detail, "envelope has no \"signatures\" array");
  if (sigs->items.empty() || sigs->items.size() > kMaxSignatures) {
    return fail(M, detail, "envelope must carry 1.." + u64s(kMaxSignatures) + " signatures");
  }
  std::vector<uint8_t> bytes;
  if (!base64_decode(payload->text, bytes)) return fail(M, detail, "payload is not canonical base64");
  if (bytes.empty() || bytes.size() > kMaxPayloadBytes) {
    return fail(M, detail, "payload must be 1.." + u64s(kMaxPayloadBytes) + " bytes");
  }
  // Every entry must be {keyid: 64 lower-case hex, sig: 1..200 characters}. Signatures are decoded
  // only for trusted keyids, and there strictly: an entry by an unknown key (a rotated-out or future
  // release key) is ignored whatever its sig holds. Same rules as verifyEnvelopeSignature() in
  // ota-server/src/manifest/verify.ts, so both verifiers agree on every envelope.
  for (const auto& s : sigs->items) {
    const json::Value* keyid = s.get("keyid");
    const json::Value* sig = s.get("sig");
    if (!s.is(json::Type::Object) || !only_keys(s, {"keyid", "sig"}, unknown) || !keyid || !sig) {
      return fail(M, detail, "a signature entry is not {\"keyid\", \"sig\"}");
    }
    if (!keyid->is(json::Type::String) || !is_lower_hex(keyid->text, 64)) {
      return fail(M, detail, "a signature keyid is not 64 lower-case hex digits");
    }
    if (!sig->is(json::Type::String) || sig->text.empty() || sig->text.size() > 200) {
      return fail(M, detail, "a signature is not a string of 1..200 characters");
    }
  }
  bool known_key = false;
  std::string verified_by;
  std::vector<std::string> verified;  // keyids that already verified; their further entries are skipped
  for (const auto& s : sigs->items) {
    const std::string& keyid = s.get("keyid")->text;
    for (std::size_t k = 0; k < n_trusted; ++k) {
      if (!trusted[k] || !trusted[k]->loaded() || trusted[k]->keyid() != keyid) continue;
      known_key = true;
      bool done = false;
      for (const auto& v : verified) done = done || v == keyid;
      if (done) continue;
      std::vector<uint8_t> sig;
      if (!base64_decode(s.get("sig")->text, sig)) {
        return fail(M, detail, "the signature of key " + keyid.substr(0, 16) + "... is not canonical base64");
      }
      if (trusted[k]->verify(bytes.data(), bytes.size(), sig.data(), sig.size())) {
        verified.push_back(keyid);
        if (verified_by.empty()) verified_by = keyid;
      }
    }
  }
  if (!verified_by.empty()) {
    out.bytes = std::move(bytes);
    out.keyid = verified_by;
    return OtaReject::None;
  }
  return fail(OtaReject::BadSignature, detail,
              known_key ? "the signature by the trusted release key does not verify over the payload; the envelope "
                          "was altered or signed with another key"
                        : "no signature is by a trusted release key (envelope keyid " +
                              sigs->items.front().get("keyid")->text.substr(0, 16) + "...); was it signed with another key?");
}

OtaReject parse_manifest(const uint8_t* bytes, std::size_t len, Manifest& out, std::string* detail) {
  out = Manifest{};
  const auto M = OtaReject::MalformedManifest;
  json::Value v;
  std::string err;
  json::Limits lim;
  lim.max_bytes = kMaxPayloadBytes;
  lim.max_depth = 4;
  if (!json::parse(std::string_view(reinterpret_cast<const char*>(bytes), len), v, &err, lim)) {
    return fail(M, detail, "manifest is not valid JSON: " + err);
  }
  if (!v.is(json::Type::Object)) return fail(M, detail, "manifest is not a JSON object");
  std::string unknown;
  if (!only_keys(v, {"schema", "deployment", "hw", "version", "secure_version", "issued_at", "expires", "image",
                     "rollout"},
                 unknown)) {
    return fail(M, detail, "manifest has an unknown field \"" + unknown + "\"");
  }
  auto str = [&](const char* key, std::string& dst) {
    const json::Value* f = v.get(key);
    if (!f || !f->is(json::Type::String)) return false;
    dst = f->text;
    return true;
  };
  uint64_t n = 0;
  const json::Value* f = v.get("schema");
  if (!f || !f->as_uint(n) || n != 1) return fail(M, detail, "manifest schema is not 1");
  out.schema = 1;
  if (!str("deployment", out.deployment) || !is_valid_deployment(out.deployment)) {
    return fail(M, detail, "manifest deployment is missing or not [A-Za-z0-9][A-Za-z0-9._+-]{0,127}");
  }
  if (!str("hw", out.hw) || !is_valid_id(out.hw)) return fail(M, detail, "manifest hw is missing or invalid");
  if (!str("version", out.version_text) || !Version::parse(out.version_text, out.version)) {
    return fail(M, detail, "manifest version is missing or not a semantic version");
  }
  f = v.get("secure_version");
  if (!f || !f->as_uint(n, 0xFFFFFFFFu)) return fail(M, detail, "manifest secure_version is not an integer 0..2^32-1");
  out.secure_version = uint32_t(n);
  f = v.get("issued_at");
  if (!f || !f->as_uint(out.issued_at_ms)) return fail(M, detail, "manifest issued_at is not epoch milliseconds");
  f = v.get("expires");
  if (!f || !f->as_uint(out.expires_ms)) return fail(M, detail, "manifest expires is not epoch milliseconds");

  const json::Value* img = v.get("image");
  if (!img || !img->is(json::Type::Object) || !only_keys(*img, {"path", "size", "sha256"}, unknown)) {
    return fail(M, detail, "manifest image is not {path, size, sha256}");
  }
  const json::Value* p = img->get("path");
  const json::Value* sz = img->get("size");
  const json::Value* sh = img->get("sha256");
  if (!sh || !sh->is(json::Type::String) || !is_lower_hex(sh->text, 64)) {
    return fail(M, detail, "manifest image.sha256 is not 64 lower-case hex digits");
  }
  out.image_sha256_hex = sh->text;
  hex_decode(sh->text, out.image_sha256.data(), out.image_sha256.size());
  if (!sz || !sz->as_uint(out.image_size) || out.image_size == 0) {
    return fail(M, detail, "manifest image.size is not a positive integer");
  }
  // The server names images by their hash; a path that disagrees points at some other file.
  if (!p || !p->is(json::Type::String) || p->text != "/ota/images/" + out.image_sha256_hex + ".bin") {
    return fail(M, detail, "manifest image.path is not /ota/images/<sha256>.bin");
  }
  out.image_path = p->text;

  if (const json::Value* r = v.get("rollout")) {
    // The server applies rollouts; the device only checks the shape so that both verifiers agree.
    bool ok = r->is(json::Type::Object) && r->members.size() == 1;
    if (ok) {
      const auto& m = r->members.front();
      if (m.first == "percent") {
        ok = m.second.as_uint(n, 100);
      } else if (m.first == "devices") {
        ok = m.second.is(json::Type::Array) && !m.second.items.empty();
        for (std::size_t i = 0; ok && i < m.second.items.size(); ++i) {
          const auto& d = m.second.items[i];
          ok = d.is(json::Type::String) && is_valid_id(d.text);
          for (std::size_t j = 0; ok && j < i; ++j) ok = m.second.items[j].text != d.text;
        }
      } else {
        ok = false;
      }
    }
    if (!ok) return fail(M, detail, "manifest rollout is not {percent: 0..100} or {devices: [ids]}");
  }
  return OtaReject::None;
}

OtaReject decide_update(const Manifest& m, const DeviceFacts& d, std::string* detail) {
  if (d.check_hw && m.hw != d.hw) {
    return fail(OtaReject::WrongHw, detail, "manifest is for hw \"" + m.hw + "\", this device is \"" + d.hw + "\"");
  }
  // Without wall-clock time an expired (possibly replayed) manifest cannot be told apart from a
  // fresh one, so refuse and try again once SNTP has answered.
  if (!d.clock_valid) return fail(OtaReject::ClockNotSet, detail, "wall clock not set; cannot check expiry");
  if (d.now_ms >= m.expires_ms) {
    return fail(OtaReject::Expired, detail, "manifest expired at " + u64s(m.expires_ms) + " (now " + u64s(d.now_ms) + ")");
  }
  if (m.secure_version < d.secure_version) {
    return fail(OtaReject::SecureVersionTooLow, detail,
                "manifest secure_version " + u64s(m.secure_version) + " is below this device's " + u64s(d.secure_version));
  }
  if (compare(m.version, d.running) <= 0) {
    return fail(OtaReject::NotNewer, detail, "manifest version " + m.version_text + " is not newer than the running one");
  }
  if (d.max_image_size && m.image_size > d.max_image_size) {
    return fail(OtaReject::ImageTooLarge, detail,
                "image is " + u64s(m.image_size) + " bytes; the OTA slot holds " + u64s(d.max_image_size));
  }
  if (detail) detail->clear();
  return OtaReject::None;
}

OtaCheck check_envelope(std::string_view envelope_json, const PublicKey* const* trusted, std::size_t n_trusted,
                        const DeviceFacts& device) {
  OtaCheck c;
  VerifiedPayload vp;
  c.reject = verify_envelope(envelope_json, trusted, n_trusted, vp, &c.detail);
  if (c.reject != OtaReject::None) return c;
  c.keyid = vp.keyid;
  c.reject = parse_manifest(vp.bytes.data(), vp.bytes.size(), c.manifest, &c.detail);
  if (c.reject != OtaReject::None) return c;
  c.manifest_parsed = true;
  c.reject = decide_update(c.manifest, device, &c.detail);
  return c;
}

}  // namespace ferry
