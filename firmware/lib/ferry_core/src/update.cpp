#include "ferry/update.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "ferry/json.h"

namespace ferry {
namespace {
constexpr const char* kCheckpointKey = "ota_dl";  // NVS keys are <= 15 characters
}

const char* image_result_name(ImageResult r) {
  switch (r) {
    case ImageResult::Ok: return "";
    case ImageResult::TooLarge: return "size";
    case ImageResult::TooShort: return "size";
    case ImageResult::HashMismatch: return "sha256";
    case ImageResult::HashError: return "sha256";
  }
  return "unknown";
}

void ImageVerifier::begin(uint64_t expected_size, const Digest& expected_sha256) {
  sha_.reset();
  expected_ = expected_sha256;
  expected_size_ = expected_size;
  received_ = 0;
  overflow_ = false;
}

bool ImageVerifier::update(const uint8_t* data, std::size_t len) {
  if (overflow_ || len > expected_size_ - received_) {
    overflow_ = true;
    return false;
  }
  received_ += len;
  return sha_.update(data, len);
}

ImageResult ImageVerifier::finish() {
  if (overflow_) return ImageResult::TooLarge;
  if (received_ != expected_size_) return ImageResult::TooShort;
  Digest got;
  if (!sha_.finish(got)) return ImageResult::HashError;
  // Constant-time compare is not needed for a public digest, but costs nothing.
  uint8_t diff = 0;
  for (std::size_t i = 0; i < got.size(); ++i) diff |= uint8_t(got[i] ^ expected_[i]);
  return diff ? ImageResult::HashMismatch : ImageResult::Ok;
}

bool load_checkpoint(const Storage& s, DownloadCheckpoint& out) {
  out = DownloadCheckpoint{};
  std::string raw;
  if (!s.get(kCheckpointKey, raw)) return false;
  json::Value v;
  if (!json::parse(raw, v) || !v.is(json::Type::Object)) return false;
  const json::Value* sha = v.get("sha256");
  const json::Value* bytes = v.get("bytes");
  if (!sha || !sha->is(json::Type::String) || sha->text.size() != 64 || !bytes || !bytes->as_uint(out.bytes)) {
    out = DownloadCheckpoint{};
    return false;
  }
  out.sha256_hex = sha->text;
  return true;
}

bool save_checkpoint(Storage& s, const DownloadCheckpoint& cp) {
  std::string raw = "{\"sha256\":";
  json::append_string(raw, cp.sha256_hex);
  char tail[40];
  std::snprintf(tail, sizeof tail, ",\"bytes\":%llu}", static_cast<unsigned long long>(cp.bytes));
  raw += tail;
  return s.put(kCheckpointKey, raw);
}

bool clear_checkpoint(Storage& s) { return s.erase(kCheckpointKey); }

uint64_t resume_offset(const DownloadCheckpoint& cp, const Manifest& m) {
  if (cp.sha256_hex != m.image_sha256_hex || cp.bytes >= m.image_size) return 0;
  return cp.bytes - cp.bytes % kFlashSector;
}

}  // namespace ferry
