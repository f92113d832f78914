// A release signer for host tests: a fresh P-256 key per instance (mbedTLS keygen), DER ECDSA
// signatures, and envelope/manifest builders mirroring ota-server/src/manifest/. Test-only: the
// device never signs. Cross-implementation agreement is tested separately with vectors made by
// the TypeScript signer (test/vectors/).
#pragma once

#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/ecdsa.h>
#include <mbedtls/ecp.h>
#include <mbedtls/entropy.h>
#include <mbedtls/pk.h>
#include <mbedtls/version.h>

#include "ferry/codec.h"
#include "ferry/crypto.h"

namespace fakes {

class TestSigner {
 public:
  TestSigner() {
    mbedtls_pk_init(&pk_);
    mbedtls_entropy_init(&entropy_);
    mbedtls_ctr_drbg_init(&drbg_);
    const char pers[] = "ferry-test-signer";
    if (mbedtls_ctr_drbg_seed(&drbg_, mbedtls_entropy_func, &entropy_, reinterpret_cast<const unsigned char*>(pers),
                              sizeof pers) != 0 ||
        mbedtls_pk_setup(&pk_, mbedtls_pk_info_from_type(MBEDTLS_PK_ECKEY)) != 0 ||
        mbedtls_ecp_gen_key(MBEDTLS_ECP_DP_SECP256R1, mbedtls_pk_ec(pk_), mbedtls_ctr_drbg_random, &drbg_) != 0) {
      throw std::runtime_error("test key generation failed");
    }
    unsigned char buf[512];
    if (mbedtls_pk_write_pubkey_pem(&pk_, buf, sizeof buf) != 0) throw std::runtime_error("pem export failed");
    pem_ = reinterpret_cast<const char*>(buf);
    std::string err;
    if (!pub_.load(pem_, &err)) throw std::runtime_error("own public key does not load: " + err);
  }
  ~TestSigner() {
    mbedtls_pk_free(&pk_);
    mbedtls_ctr_drbg_free(&drbg_);
    mbedtls_entropy_free(&entropy_);
  }
  TestSigner(const TestSigner&) = delete;
  TestSigner& operator=(const TestSigner&) = delete;

  const std::string& public_pem() const { return pem_; }
  const ferry::PublicKey& public_key() const { return pub_; }
  const std::string& keyid() const { return pub_.keyid(); }

  std::vector<uint8_t> sign(const std::string& msg) {
    ferry::Digest h;
    ferry::Sha256::of(reinterpret_cast<const uint8_t*>(msg.data()), msg.size(), h);
    std::vector<uint8_t> sig(MBEDTLS_ECDSA_MAX_LEN);
    size_t len = 0;
#if MBEDTLS_VERSION_MAJOR >= 3
    int rc = mbedtls_pk_sign(&pk_, MBEDTLS_MD_SHA256, h.data(), h.size(), sig.data(), sig.size(), &len,
                             mbedtls_ctr_drbg_random, &drbg_);
#else
    int rc = mbedtls_pk_sign(&pk_, MBEDTLS_MD_SHA256, h.data(), h.size(), sig.data(), &len, mbedtls_ctr_drbg_random,
                             &drbg_);
#endif
    if (rc != 0) throw std::runtime_error("sign failed");
    sig.resize(len);
    return sig;
  }

 private:
  mbedtls_pk_context pk_;
  mbedtls_entropy_context entropy_;
  mbedtls_ctr_drbg_context drbg_;
  std::string pem_;
  ferry::PublicKey pub_;
};

struct SigEntry {
  std::string keyid;
  std::vector<uint8_t> sig;
};

inline std::string b64(const std::string& s) {
  return ferry::base64_encode(reinterpret_cast<const uint8_t*>(s.data()), s.size());
}

inline std::string envelope_json(const std::string& payload, const std::vector<SigEntry>& sigs) {
  std::string out = "{\"payload\":\"" + b64(payload) + "\",\"signatures\":[";
  for (size_t i = 0; i < sigs.size(); ++i) {
    if (i) out += ',';
    out += "{\"keyid\":\"" + sigs[i].keyid + "\",\"sig\":\"" +
           ferry::base64_encode(sigs[i].sig.data(), sigs[i].sig.size()) + "\"}";
  }
  return out + "]}";
}

inline std::string sign_envelope(TestSigner& s, const std::string& payload) {
  return envelope_json(payload, {{s.keyid(), s.sign(payload)}});
}

/// A manifest in the signer's canonical form (field order and no whitespace as in encodeManifest).
struct ManifestFields {
  std::string deployment = "esp32dev-1.4.0";
  std::string hw = "esp32dev";
  std::string version = "1.4.0";
  uint32_t secure_version = 2;
  uint64_t issued_at = 1767225600000ULL;  // 2026-01-01
  uint64_t expires = 1769817600000ULL;    // 2026-01-31
  std::string sha256 = std::string(64, 'a');
  uint64_t size = 1048576;
  std::string rollout;  // raw JSON, e.g. {"percent":50}

  std::string json() const {
    std::string out = "{\"schema\":1,\"deployment\":\"" + deployment + "\",\"hw\":\"" + hw + "\",\"version\":\"" +
                      version + "\",\"secure_version\":" + std::to_string(secure_version) +
                      ",\"issued_at\":" + std::to_string(issued_at) + ",\"expires\":" + std::to_string(expires) +
                      ",\"image\":{\"path\":\"/ota/images/" + sha256 + ".bin\",\"size\":" + std::to_string(size) +
                      ",\"sha256\":\"" + sha256 + "\"}";
    if (!rollout.empty()) out += ",\"rollout\":" + rollout;
    return out + "}";
  }
};

}  // namespace fakes
