// Image checks while an update streams into the inactive OTA slot, and resumable-download
// bookkeeping. Arduino's Update library checks only the 0xE9 magic byte and an optional MD5 and
// cannot resume at an offset (docs/firmware-notes.md#arduino-update-and-httpupdate), so the glue
// writes the slot with esp_partition_* and this code decides what is accepted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "ferry/crypto.h"
#include "ferry/manifest.h"
#include "ferry/ports.h"

namespace ferry {

enum class ImageResult {
  Ok,
  TooLarge,      ///< "size": more bytes arrived than the manifest's image.size
  TooShort,      ///< "size": the stream ended early
  HashMismatch,  ///< "sha256"
  HashError,     ///< the hash engine failed
};
const char* image_result_name(ImageResult r);

/// Counts and hashes the image bytes in the order they are written. Every byte that reaches
/// flash must pass through update() (on resume: the bytes read back from flash first).
class ImageVerifier {
 public:
  void begin(uint64_t expected_size, const Digest& expected_sha256);
  /// False once more bytes than expected have been seen; the caller must stop writing.
  bool update(const uint8_t* data, std::size_t len);
  uint64_t received() const { return received_; }
  /// Call once at the end. Ok only when the size is exact and the digest matches.
  ImageResult finish();

 private:
  Sha256 sha_;
  Digest expected_{};
  uint64_t expected_size_ = 0;
  uint64_t received_ = 0;
  bool overflow_ = false;
};

/// Where an interrupted download stopped. Stored in NVS every `kCheckpointEvery` bytes; tied to the
/// image by its sha256, so a different release never resumes into an old one.
struct DownloadCheckpoint {
  std::string sha256_hex;
  uint64_t bytes = 0;
};

/// Flash is erased in 4 KiB sectors; resuming at a sector boundary lets the glue erase-then-write
/// without reading a half-written sector back.
constexpr uint32_t kFlashSector = 4096;
/// Checkpoint interval: 16 NVS writes per MiB keeps flash wear negligible
/// (docs/firmware-notes.md#nvs-and-flash-wear).
constexpr uint32_t kCheckpointEvery = 64 * 1024;

bool load_checkpoint(const Storage& s, DownloadCheckpoint& out);
bool save_checkpoint(Storage& s, const DownloadCheckpoint& cp);
bool clear_checkpoint(Storage& s);

/// The offset to resume at for `m`: the checkpoint rounded down to a sector, or 0 when the
/// checkpoint belongs to another image or is out of range.
uint64_t resume_offset(const DownloadCheckpoint& cp, const Manifest& m);

/// True when the download has crossed another checkpoint interval since `last_saved`.
inline bool checkpoint_due(uint64_t written, uint64_t last_saved) {
  return written / kCheckpointEvery != last_saved / kCheckpointEvery;
}

}  // namespace ferry
