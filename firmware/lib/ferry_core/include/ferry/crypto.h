// SHA-256 and ECDSA P-256 signature verification over mbedTLS.
//
// This header and crypto.cpp are the only places that touch mbedTLS, because its API differs
// between the host (Debian 12: mbedTLS 2.28) and the device (Arduino-ESP32 3.x on ESP-IDF 5.x:
// mbedTLS 3.x; ESP-IDF 6: mbedTLS 4 + PSA). See crypto.cpp for the portability rules followed.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace ferry {

using Digest = std::array<uint8_t, 32>;

/// Streaming SHA-256. Hashing an image chunk by chunk while it is written to flash.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  /// Starts over; also called by the constructor.
  bool reset();
  bool update(const uint8_t* data, std::size_t len);
  /// Writes the digest; the object must be reset() before it is used again.
  bool finish(Digest& out);
  static bool of(const uint8_t* data, std::size_t len, Digest& out);

 private:
  struct Impl;
  Impl* impl_;
  bool ok_ = false;
};

/// A release public key (ECDSA P-256). Non-copyable: it owns an mbedTLS context.
class PublicKey {
 public:
  PublicKey();
  ~PublicKey();
  PublicKey(const PublicKey&) = delete;
  PublicKey& operator=(const PublicKey&) = delete;

  /// Parses an SPKI public key in PEM ("-----BEGIN PUBLIC KEY-----") or DER. Refuses keys that
  /// are not EC P-256. On failure `error` says why. The key id is computed here.
  bool load(std::string_view pem_or_der, std::string* error = nullptr);
  bool loaded() const { return loaded_; }

  /// Lower-case hex sha256 of the SubjectPublicKeyInfo DER: the `keyid` in envelopes.
  const std::string& keyid() const { return keyid_; }

  /// True when `sig` is a valid DER ECDSA-SHA256 signature over exactly `msg`.
  bool verify(const uint8_t* msg, std::size_t msg_len, const uint8_t* sig, std::size_t sig_len) const;

 private:
  struct Impl;
  Impl* impl_;
  bool loaded_ = false;
  std::string keyid_;
};

}  // namespace ferry
