#include <string>
#include <vector>

#include "fakes/doctest.h"
#include "fakes/fakes.h"
#include "ferry/codec.h"
#include "ferry/update.h"

namespace {

std::vector<uint8_t> image(std::size_t n) {
  std::vector<uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = uint8_t(i * 31 + 7);
  return v;
}

ferry::Digest digest(const std::vector<uint8_t>& v) {
  ferry::Digest d;
  REQUIRE(ferry::Sha256::of(v.data(), v.size(), d));
  return d;
}

ferry::Manifest manifest_for(const std::vector<uint8_t>& img) {
  ferry::Manifest m;
  m.image_size = img.size();
  m.image_sha256 = digest(img);
  m.image_sha256_hex = ferry::hex_encode(m.image_sha256.data(), m.image_sha256.size());
  return m;
}

}  // namespace

TEST_SUITE("update") {
  TEST_CASE("accepts an image streamed in uneven chunks when size and sha256 match") {
    auto img = image(10000);
    ferry::ImageVerifier v;
    v.begin(img.size(), digest(img));
    std::size_t pos = 0;
    for (std::size_t chunk : {1u, 4095u, 4096u, 1808u}) {
      REQUIRE(v.update(img.data() + pos, chunk));
      pos += chunk;
    }
    CHECK(v.received() == img.size());
    CHECK(v.finish() == ferry::ImageResult::Ok);
  }

  TEST_CASE("refuses an image with one flipped bit") {
    auto img = image(5000);
    auto d = digest(img);
    img[4321] ^= 0x10;
    ferry::ImageVerifier v;
    v.begin(img.size(), d);
    REQUIRE(v.update(img.data(), img.size()));
    CHECK(v.finish() == ferry::ImageResult::HashMismatch);
    CHECK(std::string(ferry::image_result_name(ferry::ImageResult::HashMismatch)) == "sha256");
  }

  TEST_CASE("stops the stream as soon as it exceeds the manifest size") {
    auto img = image(100);
    ferry::ImageVerifier v;
    v.begin(99, digest(img));
    CHECK(v.update(img.data(), 99));
    CHECK_FALSE(v.update(img.data() + 99, 1));
    CHECK_FALSE(v.update(img.data(), 0));  // stays refused
    CHECK(v.finish() == ferry::ImageResult::TooLarge);
  }

  TEST_CASE("refuses a stream that ends early") {
    auto img = image(100);
    ferry::ImageVerifier v;
    v.begin(img.size(), digest(img));
    REQUIRE(v.update(img.data(), 60));
    CHECK(v.finish() == ferry::ImageResult::TooShort);
  }

  TEST_CASE("a resumed download that re-hashes the written prefix verifies like a full one") {
    auto img = image(3 * ferry::kFlashSector + 123);
    auto m = manifest_for(img);
    fakes::FakeStorage nvs;
    REQUIRE(ferry::save_checkpoint(nvs, {m.image_sha256_hex, 2 * ferry::kFlashSector + 500}));
    ferry::DownloadCheckpoint cp;
    REQUIRE(ferry::load_checkpoint(nvs, cp));
    uint64_t off = ferry::resume_offset(cp, m);
    CHECK(off == 2 * ferry::kFlashSector);  // rounded down to a sector
    ferry::ImageVerifier v;
    v.begin(m.image_size, m.image_sha256);
    REQUIRE(v.update(img.data(), std::size_t(off)));  // read back from flash
    REQUIRE(v.update(img.data() + off, img.size() - std::size_t(off)));  // the Range response
    CHECK(v.finish() == ferry::ImageResult::Ok);
  }

  TEST_CASE("never resumes into a different image or past the end") {
    auto img = image(10000);
    auto m = manifest_for(img);
    CHECK(ferry::resume_offset({std::string(64, '0'), 8192}, m) == 0);
    CHECK(ferry::resume_offset({m.image_sha256_hex, 10000}, m) == 0);
    CHECK(ferry::resume_offset({m.image_sha256_hex, 999999}, m) == 0);
    CHECK(ferry::resume_offset({m.image_sha256_hex, 4095}, m) == 0);
    CHECK(ferry::resume_offset({m.image_sha256_hex, 9000}, m) == 8192);
  }

  TEST_CASE("a missing, cleared or corrupt checkpoint reads as none") {
    fakes::FakeStorage nvs;
    ferry::DownloadCheckpoint cp;
    CHECK_FALSE(ferry::load_checkpoint(nvs, cp));
    REQUIRE(ferry::save_checkpoint(nvs, {std::string(64, 'b'), 65536}));
    REQUIRE(ferry::clear_checkpoint(nvs));
    CHECK_FALSE(ferry::load_checkpoint(nvs, cp));
    nvs.kv["ota_dl"] = "{\"sha256\":\"x\",\"bytes\":1}";
    CHECK_FALSE(ferry::load_checkpoint(nvs, cp));
    nvs.kv["ota_dl"] = "garbage";
    CHECK_FALSE(ferry::load_checkpoint(nvs, cp));
    CHECK(cp.bytes == 0);
  }

  TEST_CASE("checkpoints are due once per interval, not per chunk") {
    CHECK_FALSE(ferry::checkpoint_due(1000, 0));
    CHECK(ferry::checkpoint_due(ferry::kCheckpointEvery, 0));
    CHECK_FALSE(ferry::checkpoint_due(ferry::kCheckpointEvery + 4096, ferry::kCheckpointEvery));
    CHECK(ferry::checkpoint_due(2 * ferry::kCheckpointEvery + 1, ferry::kCheckpointEvery + 5));
  }
}
