// mbedTLS portability, the rules this file follows
// (docs/firmware-notes.md#mbedtls-signature-verification,
// docs/firmware-notes.md#portable-crypto-across-mbedtls-versions):
//
// * Hashing uses the generic mbedtls_md_* API. Its int-returning signatures are the same in 2.28
//   and 3.x, while the sha256-specific functions were renamed in 3.0 (mbedtls_sha256_starts_ret
//   became mbedtls_sha256_starts), so they would need #ifs.
// * mbedtls_pk_parse_public_key, mbedtls_pk_verify and mbedtls_pk_write_pubkey_der keep their
//   signatures from 2.28 to 3.x. A PEM key must be NUL-terminated and the length must include the
//   NUL, which is why PEM input is copied into a std::string first.
// * mbedtls_pk_verify takes the ASN.1 DER signature SEQUENCE{r,s} (what Node's crypto.sign and
//   openssl dgst write by default). A raw 64-byte r||s is refused by mbedTLS, and we do not convert.
//   The signature is passed byte-exact: no padding, no trimming.
// * mbedTLS 4 (ESP-IDF 6) runs everything through PSA: psa_crypto_init() must be called before any
//   crypto. It is called once below under MBEDTLS_VERSION_MAJOR >= 4. This branch has not been
//   compiled (no mbedTLS 4 here); 2.28 is host-tested and 3.x is what Arduino-ESP32 3.x ships.
// * Private struct fields (grp, Q) are never touched: they are private in 3.x. The curve is checked
//   on the re-encoded SPKI bytes instead.
#include "ferry/crypto.h"

#include <cstdio>
#include <cstring>
#include <string>

#include <mbedtls/version.h>
#include <mbedtls/md.h>
#include <mbedtls/pk.h>
#if MBEDTLS_VERSION_MAJOR >= 4
#include <psa/crypto.h>
#endif

#include "ferry/codec.h"

namespace ferry {
namespace {

bool crypto_ready() {
#if MBEDTLS_VERSION_MAJOR >= 4
  static const bool ok = psa_crypto_init() == PSA_SUCCESS;
  return ok;
#else
  return true;
#endif
}

}  // namespace

struct Sha256::Impl {
  mbedtls_md_context_t ctx;
};

Sha256::Sha256() : impl_(new Impl) {
  mbedtls_md_init(&impl_->ctx);
  ok_ = crypto_ready() &&
        mbedtls_md_setup(&impl_->ctx, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 0) == 0 &&
        mbedtls_md_starts(&impl_->ctx) == 0;
}

Sha256::~Sha256() {
  mbedtls_md_free(&impl_->ctx);
  delete impl_;
}

bool Sha256::reset() {
  // md_setup happened in the constructor; starting again is all a reset needs.
  return mbedtls_md_starts(&impl_->ctx) == 0;
}

bool Sha256::update(const uint8_t* data, std::size_t len) {
  return ok_ && mbedtls_md_update(&impl_->ctx, data, len) == 0;
}

bool Sha256::finish(Digest& out) {
  return ok_ && mbedtls_md_finish(&impl_->ctx, out.data()) == 0;
}

bool Sha256::of(const uint8_t* data, std::size_t len, Digest& out) {
  Sha256 h;
  return h.update(data, len) && h.finish(out);
}

struct PublicKey::Impl {
  mbedtls_pk_context pk;
};

PublicKey::PublicKey() : impl_(new Impl) { mbedtls_pk_init(&impl_->pk); }

PublicKey::~PublicKey() {
  mbedtls_pk_free(&impl_->pk);
  delete impl_;
}

bool PublicKey::load(std::string_view pem_or_der, std::string* error) {
  auto fail = [&](const std::string& why) {
    if (error) *error = why;
    mbedtls_pk_free(&impl_->pk);
    mbedtls_pk_init(&impl_->pk);
    loaded_ = false;
    keyid_.clear();
    return false;
  };
  if (!crypto_ready()) return fail("crypto library failed to initialise");
  mbedtls_pk_free(&impl_->pk);
  mbedtls_pk_init(&impl_->pk);
  const bool pem = pem_or_der.find("-----BEGIN") != std::string_view::npos;
  int rc;
  if (pem) {
    std::string z(pem_or_der);  // NUL-terminated copy; the length passed includes the NUL
    rc = mbedtls_pk_parse_public_key(&impl_->pk, reinterpret_cast<const unsigned char*>(z.c_str()), z.size() + 1);
  } else {
    rc = mbedtls_pk_parse_public_key(&impl_->pk, reinterpret_cast<const unsigned char*>(pem_or_der.data()),
                                     pem_or_der.size());
  }
  if (rc != 0) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "-0x%04X", unsigned(-rc));
    return fail(std::string("not an SPKI public key (mbedTLS ") + buf + "); expected \"-----BEGIN PUBLIC KEY-----\"");
  }
  if (mbedtls_pk_get_type(&impl_->pk) != MBEDTLS_PK_ECKEY || !mbedtls_pk_can_do(&impl_->pk, MBEDTLS_PK_ECDSA) ||
      mbedtls_pk_get_bitlen(&impl_->pk) != 256) {
    return fail("the release key must be ECDSA P-256");
  }
  // Key id = sha256(SPKI DER). mbedtls_pk_write_pubkey_der writes at the END of the buffer.
  unsigned char der[160];
  int n = mbedtls_pk_write_pubkey_der(&impl_->pk, der, sizeof der);
  if (n <= 0) return fail("cannot re-encode the public key");
  // Curve check without touching struct fields (private in 3.x): an uncompressed P-256 SPKI is
  // always these 26 bytes (SEQUENCE, id-ecPublicKey, prime256v1, BIT STRING header) plus 65.
  static const unsigned char kP256Prefix[] = {0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48,
                                              0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48,
                                              0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00};
  if (n != 91 || std::memcmp(der + sizeof der - n, kP256Prefix, sizeof kP256Prefix) != 0) {
    return fail("the release key must be on curve P-256 (prime256v1)");
  }
  Digest d;
  if (!Sha256::of(der + sizeof der - n, std::size_t(n), d)) return fail("sha256 failed");
  keyid_ = hex_encode(d.data(), d.size());
  loaded_ = true;
  return true;
}

bool PublicKey::verify(const uint8_t* msg, std::size_t msg_len, const uint8_t* sig, std::size_t sig_len) const {
  if (!loaded_ || sig_len == 0 || sig_len > 72) return false;  // 72 = MBEDTLS_ECDSA_MAX_SIG_LEN(256)
  Digest h;
  if (!Sha256::of(msg, msg_len, h)) return false;
  return mbedtls_pk_verify(&impl_->pk, MBEDTLS_MD_SHA256, h.data(), h.size(), sig, sig_len) == 0;
}

}  // namespace ferry
