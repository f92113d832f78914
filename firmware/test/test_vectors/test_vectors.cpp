// Replays the vectors that the TypeScript signer wrote (test/vectors/generate.ts) through the C++
// verifier. generate.ts already checked that the TypeScript verifier reaches each expected outcome,
// so a pass here means both implementations agree on every case.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "fakes/doctest.h"
#include "ferry/json.h"
#include "ferry/manifest.h"
#include "ferry/update.h"

#ifndef FERRY_VECTORS_DIR
#define FERRY_VECTORS_DIR "test/vectors"  // make and `pio test` both run from firmware/
#endif

namespace {

std::string slurp(const std::string& name) {
  std::ifstream f(std::string(FERRY_VECTORS_DIR) + "/" + name, std::ios::binary);
  REQUIRE_MESSAGE(f.good(), "missing vector file ", name, "; run: npx tsx firmware/test/vectors/generate.ts");
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string outcome(const std::string& envelope, const std::string& image_file, const ferry::PublicKey& key,
                    const ferry::DeviceFacts& device) {
  const ferry::PublicKey* trusted[] = {&key};
  ferry::OtaCheck c = ferry::check_envelope(envelope, trusted, 1, device);
  if (c.reject != ferry::OtaReject::None) return ferry::reject_name(c.reject);
  if (image_file.empty()) return "ok";
  std::string img = slurp(image_file);
  ferry::ImageVerifier v;
  v.begin(c.manifest.image_size, c.manifest.image_sha256);
  // Feed in flash-sector chunks, as the download does.
  for (std::size_t at = 0; at < img.size(); at += ferry::kFlashSector) {
    std::size_t n = std::min<std::size_t>(ferry::kFlashSector, img.size() - at);
    if (!v.update(reinterpret_cast<const uint8_t*>(img.data() + at), n)) break;
  }
  ferry::ImageResult r = v.finish();
  return r == ferry::ImageResult::Ok ? "ok" : ferry::image_result_name(r);
}

}  // namespace

TEST_SUITE("vectors") {
  TEST_CASE("agrees with the TypeScript signer and verifier on every committed vector") {
    ferry::json::Value index;
    std::string err;
    REQUIRE_MESSAGE(ferry::json::parse(slurp("index.json"), index, &err), err);
    ferry::PublicKey key;
    REQUIRE_MESSAGE(key.load(slurp(index.get("key")->text), &err), err);
    CHECK(key.keyid() == index.get("keyid")->text);

    const ferry::json::Value& d = *index.get("device");
    ferry::DeviceFacts device;
    device.hw = d.get("hw")->text;
    REQUIRE(ferry::Version::parse(d.get("version")->text, device.running));
    uint64_t n = 0;
    REQUIRE(d.get("secure_version")->as_uint(n));
    device.secure_version = uint32_t(n);
    REQUIRE(d.get("now")->as_uint(device.now_ms));
    device.clock_valid = true;
    REQUIRE(d.get("max_image_size")->as_uint(device.max_image_size));

    const auto& cases = index.get("cases")->items;
    REQUIRE(cases.size() >= 12);
    bool saw_ok = false, saw_bad_sig = false;
    for (const auto& c : cases) {
      const std::string name = c.get("name")->text;
      const std::string expect = c.get("expect")->text;
      const ferry::json::Value* img = c.get("image");
      std::string got = outcome(slurp(c.get("envelope")->text), img ? img->text : "", key, device);
      CHECK_MESSAGE(got == expect, "vector ", name, ": got ", got, ", expected ", expect, " (", c.get("why")->text, ")");
      saw_ok = saw_ok || expect == "ok";
      saw_bad_sig = saw_bad_sig || expect == "bad_signature";
    }
    CHECK(saw_ok);
    CHECK(saw_bad_sig);
  }
}
