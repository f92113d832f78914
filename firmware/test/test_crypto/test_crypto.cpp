#include <string>
#include <vector>

#include "fakes/doctest.h"
#include "fakes/signer.h"
#include "ferry/codec.h"
#include "ferry/crypto.h"

namespace {

// Made with openssl on the host (private key discarded):
//   openssl ecparam -name prime256v1 -genkey -noout -out k.pem; openssl ec -in k.pem -pubout
//   openssl dgst -sha256 -sign k.pem -out sig.der msg.bin
//   openssl pkey -pubin -in pub.pem -outform DER | sha256sum
const char kOpensslPub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAExUrrlh1PALpCutzB2Jne6gDPcwwZ\n"
    "hcsPre+/E2nPJMgX+v2YGYEdX94jYWxxAGZa/OVlBk9vCr34BHkMVvUDEg==\n"
    "-----END PUBLIC KEY-----\n";
const char kOpensslKeyid[] = "4d894d2e3dc4d68b23448ce263ddc9004af5c485f726ae971c1acebfd351bbcc";
const char kOpensslMsg[] = "ferry signed bytes\n";
const char kOpensslSig[] =
    "MEYCIQD7BzcjqWFobK0uGhZ/c+aVafFuqGEDCg6D6GOrPUTE+gIhAIQ9JRVVtW2tpgC2308cyiRSrmorT+r7tWe5rUwLMbyh";

const char kP384Pub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEKRztkXxGNIAnBnF1veYHBiJv/E/rBTjA\n"
    "0pVYYuggLiOQqdlUVwIyOGmIHGgMGBGFgRaczRttDVL/c+b1sPu1mntiCiWjKAlU\n"
    "Sw+km9xylkY8Ob/JQ6sAb4BBcoP5mDQA\n"
    "-----END PUBLIC KEY-----\n";
const char kBrainpoolPub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFowFAYHKoZIzj0CAQYJKyQDAwIIAQEHA0IABA0+aTt+GZMhw04+LViX5a7TWqct\n"
    "dd2uSBFi626LgXHRHE2aL+NjDhFT5Sc4UqtELv4WqwY1jn8zifobvf1p1aI=\n"
    "-----END PUBLIC KEY-----\n";
const char kRsaPub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCfW8oQtqfUwCe2GFk48YFjHDBf\n"
    "fNrlBB+3ApPHQdGdICUud7XfnCi+4nsliYO0OEMo345igrG6zfqW1NbsZ7G+6rml\n"
    "jfANo2wdukebQTIo7qaoa6BWboxpTKtfRUEqtwyi+nOpZiKWR4Nf92P/ZPVx4EQ3\n"
    "IsxWFJGKypQnZOYpWQIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

std::vector<uint8_t> unb64(const char* s) {
  std::vector<uint8_t> out;
  REQUIRE(ferry::base64_decode(s, out));
  return out;
}

const uint8_t* u8(const char* s) { return reinterpret_cast<const uint8_t*>(s); }

}  // namespace

TEST_SUITE("crypto") {
  TEST_CASE("sha256 matches the FIPS 180-2 test vector, in one call and streamed") {
    ferry::Digest d;
    REQUIRE(ferry::Sha256::of(u8("abc"), 3, d));
    CHECK(ferry::hex_encode(d.data(), d.size()) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ferry::Sha256 h;
    h.update(u8("a"), 1);
    h.update(u8("bc"), 2);
    ferry::Digest d2;
    REQUIRE(h.finish(d2));
    CHECK(d == d2);
    REQUIRE(h.reset());
    h.update(u8("abc"), 3);
    REQUIRE(h.finish(d2));
    CHECK(d == d2);
  }

  TEST_CASE("accepts an openssl DER signature and computes the keyid openssl computes") {
    ferry::PublicKey k;
    std::string err;
    REQUIRE_MESSAGE(k.load(kOpensslPub, &err), err);
    CHECK(k.keyid() == kOpensslKeyid);
    auto sig = unb64(kOpensslSig);
    CHECK(k.verify(u8(kOpensslMsg), sizeof kOpensslMsg - 1, sig.data(), sig.size()));
  }

  TEST_CASE("rejects a signature over bytes that differ by one bit") {
    ferry::PublicKey k;
    REQUIRE(k.load(kOpensslPub));
    auto sig = unb64(kOpensslSig);
    std::string msg = kOpensslMsg;
    msg[3] ^= 0x01;
    CHECK(!k.verify(u8(msg.c_str()), msg.size(), sig.data(), sig.size()));
  }

  TEST_CASE("rejects truncated, extended, raw r||s and empty signatures") {
    ferry::PublicKey k;
    REQUIRE(k.load(kOpensslPub));
    auto sig = unb64(kOpensslSig);
    const std::size_t n = sizeof kOpensslMsg - 1;
    CHECK(!k.verify(u8(kOpensslMsg), n, sig.data(), sig.size() - 1));
    CHECK(!k.verify(u8(kOpensslMsg), n, sig.data(), 8));
    auto longer = sig;
    longer.push_back(0);
    CHECK(!k.verify(u8(kOpensslMsg), n, longer.data(), longer.size()));
    std::vector<uint8_t> raw(64, 0x11);
    CHECK(!k.verify(u8(kOpensslMsg), n, raw.data(), raw.size()));
    CHECK(!k.verify(u8(kOpensslMsg), n, sig.data(), 0));
  }

  TEST_CASE("rejects a signature made by another key") {
    fakes::TestSigner other;
    ferry::PublicKey k;
    REQUIRE(k.load(kOpensslPub));
    auto sig = other.sign(kOpensslMsg);
    CHECK(!k.verify(u8(kOpensslMsg), sizeof kOpensslMsg - 1, sig.data(), sig.size()));
    CHECK(other.public_key().verify(u8(kOpensslMsg), sizeof kOpensslMsg - 1, sig.data(), sig.size()));
  }

  TEST_CASE("loads DER as well as PEM, with the same keyid") {
    std::string b64body = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAExUrrlh1PALpCutzB2Jne6gDPcwwZ"
                          "hcsPre+/E2nPJMgX+v2YGYEdX94jYWxxAGZa/OVlBk9vCr34BHkMVvUDEg==";
    std::vector<uint8_t> der;
    REQUIRE(ferry::base64_decode(b64body, der));
    ferry::PublicKey k;
    REQUIRE(k.load(std::string_view(reinterpret_cast<const char*>(der.data()), der.size())));
    CHECK(k.keyid() == kOpensslKeyid);
  }

  TEST_CASE("refuses keys that are not ECDSA P-256, and garbage") {
    for (const char* pem : {kP384Pub, kBrainpoolPub, kRsaPub, "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
                            "not a key"}) {
      ferry::PublicKey k;
      std::string err;
      CHECK_MESSAGE(!k.load(pem, &err), pem);
      CHECK(!err.empty());
      CHECK(!k.loaded());
      CHECK(k.keyid().empty());
    }
  }

  TEST_CASE("an unloaded key verifies nothing") {
    ferry::PublicKey k;
    auto sig = unb64(kOpensslSig);
    CHECK(!k.verify(u8(kOpensslMsg), sizeof kOpensslMsg - 1, sig.data(), sig.size()));
  }
}
