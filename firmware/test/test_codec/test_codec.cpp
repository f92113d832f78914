#include <string>
#include <vector>

#include "fakes/doctest.h"
#include "ferry/codec.h"

TEST_SUITE("codec") {
  TEST_CASE("base64 round-trips every length and matches RFC 4648 §10") {
    const char* rfc[][2] = {{"", ""}, {"f", "Zg=="}, {"fo", "Zm8="}, {"foo", "Zm9v"}, {"foob", "Zm9vYg=="},
                            {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"}};
    for (auto& p : rfc) {
      std::string in = p[0];
      CHECK(ferry::base64_encode(reinterpret_cast<const uint8_t*>(in.data()), in.size()) == p[1]);
      std::vector<uint8_t> out;
      REQUIRE(ferry::base64_decode(p[1], out));
      CHECK(std::string(out.begin(), out.end()) == in);
    }
    std::vector<uint8_t> all(256);
    for (int i = 0; i < 256; ++i) all[i] = uint8_t(i);
    std::vector<uint8_t> back;
    REQUIRE(ferry::base64_decode(ferry::base64_encode(all.data(), all.size()), back));
    CHECK(back == all);
  }

  TEST_CASE("base64 refuses non-canonical input") {
    for (const char* s : {"Zg", "Zg=", "Zh==", "Zm9=", "Z===", "Zg==Zg==", "Zm 9v", "Zm9v\n", "Zm-v", "Zm_v", "=Zm9",
                          "Zm=v"}) {
      std::vector<uint8_t> out;
      CHECK_MESSAGE(!ferry::base64_decode(s, out), s);
    }
  }

  TEST_CASE("hex decodes both cases and refuses wrong lengths and digits") {
    uint8_t b[2];
    REQUIRE(ferry::hex_decode("aB0f", b, 2));
    CHECK(b[0] == 0xAB);
    CHECK(b[1] == 0x0F);
    CHECK(!ferry::hex_decode("aB0", b, 2));
    CHECK(!ferry::hex_decode("aB0g", b, 2));
    CHECK(ferry::hex_encode(b, 2) == "ab0f");
  }
}
