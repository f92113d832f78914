// verify_manifest: runs the firmware's own OTA checks on the host, for release engineers and for
// the cross-check against the TypeScript signer (test/e2e/firmware-cross-check.test.ts).
//
//   verify_manifest <release.pub> <envelope.json> [--hw <hw>] [--secure-version <n>]
//                   [--version <running>] [--image <file>] [--now <epoch ms>] [--max-size <bytes>]
//
// Same code path as the device: signature over the exact payload bytes, then the manifest, then
// the policy (hw, expiry, secure_version, newer version, size), then, with --image, size and
// sha256 streamed over the file in 4 KiB chunks like the download.
// Without --hw the hardware check is skipped (and said so). --version defaults to 0.0.0, --now to
// the current time.
//
// Prints one JSON line on stdout: {"ok":bool,"reason":"...","detail":"...",...}.
// Exit codes: 0 the update is valid, 1 it is refused, 2 usage or I/O error.
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "ferry/crypto.h"
#include "ferry/json.h"
#include "ferry/manifest.h"
#include "ferry/update.h"

namespace {

const char kUsage[] =
    "usage: verify_manifest <release.pub> <envelope.json> [--hw <hw>] [--secure-version <n>]\n"
    "                       [--version <running>] [--image <file>] [--now <epoch ms>] [--max-size <bytes>]\n"
    "exit codes: 0 valid, 1 refused, 2 usage or I/O error\n";

bool read_file(const char* path, std::string& out) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return false;
  std::ostringstream ss;
  ss << f.rdbuf();
  out = ss.str();
  return true;
}

bool parse_u64(const char* s, uint64_t& out) {
  if (!s || !*s) return false;
  uint64_t v = 0;
  for (const char* p = s; *p; ++p) {
    if (*p < '0' || *p > '9') return false;
    uint64_t d = uint64_t(*p - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
  }
  out = v;
  return true;
}

int usage(const std::string& why) {
  std::fprintf(stderr, "verify_manifest: %s\n%s", why.c_str(), kUsage);
  return 2;
}

void print_result(bool ok, const std::string& reason, const std::string& detail, const ferry::OtaCheck* c) {
  std::string out = "{\"ok\":";
  out += ok ? "true" : "false";
  out += ",\"reason\":";
  ferry::json::append_string(out, reason);
  out += ",\"detail\":";
  ferry::json::append_string(out, detail);
  if (c && c->manifest_parsed) {
    out += ",\"deployment\":";
    ferry::json::append_string(out, c->manifest.deployment);
    out += ",\"version\":";
    ferry::json::append_string(out, c->manifest.version_text);
    out += ",\"keyid\":";
    ferry::json::append_string(out, c->keyid);
  }
  out += "}\n";
  std::fputs(out.c_str(), stdout);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<const char*> positional;
  const char* hw = nullptr;
  const char* image = nullptr;
  std::string running = "0.0.0";
  uint64_t secure_version = 0, now = 0, max_size = 0;
  bool have_now = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char*& dst) {
      if (i + 1 >= argc) return false;
      dst = argv[++i];
      return true;
    };
    const char* v = nullptr;
    if (a == "-h" || a == "--help") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (a == "--hw") {
      if (!value(hw)) return usage("--hw needs a value");
    } else if (a == "--image") {
      if (!value(image)) return usage("--image needs a file");
    } else if (a == "--version") {
      if (!value(v)) return usage("--version needs a semantic version");
      running = v;
    } else if (a == "--secure-version") {
      if (!value(v) || !parse_u64(v, secure_version) || secure_version > 0xFFFFFFFFu) {
        return usage("--secure-version needs an integer 0..4294967295");
      }
    } else if (a == "--now") {
      if (!value(v) || !parse_u64(v, now)) return usage("--now needs epoch milliseconds");
      have_now = true;
    } else if (a == "--max-size") {
      if (!value(v) || !parse_u64(v, max_size)) return usage("--max-size needs a byte count");
    } else if (!a.empty() && a[0] == '-') {
      return usage("unknown option " + a);
    } else {
      positional.push_back(argv[i]);
    }
  }
  if (positional.size() != 2) return usage("expected <release.pub> and <envelope.json>");

  std::string keys_text, envelope;
  if (!read_file(positional[0], keys_text)) return usage(std::string("cannot read ") + positional[0]);
  if (!read_file(positional[1], envelope)) return usage(std::string("cannot read ") + positional[1]);

  // A key file may hold several PEM keys (rotation: old and new); each one is trusted.
  std::vector<std::unique_ptr<ferry::PublicKey>> keys;
  const std::string begin = "-----BEGIN PUBLIC KEY-----", end = "-----END PUBLIC KEY-----";
  for (std::size_t pos = keys_text.find(begin); pos != std::string::npos; pos = keys_text.find(begin, pos + 1)) {
    std::size_t stop = keys_text.find(end, pos);
    if (stop == std::string::npos) break;
    auto k = std::make_unique<ferry::PublicKey>();
    std::string err;
    if (!k->load(keys_text.substr(pos, stop + end.size() - pos) + "\n", &err)) {
      return usage(std::string(positional[0]) + ": " + err);
    }
    keys.push_back(std::move(k));
  }
  if (keys.empty()) return usage(std::string(positional[0]) + " holds no \"-----BEGIN PUBLIC KEY-----\" block");
  std::vector<const ferry::PublicKey*> trusted;
  for (auto& k : keys) trusted.push_back(k.get());

  ferry::DeviceFacts facts;
  facts.check_hw = hw != nullptr;
  facts.hw = hw ? hw : "";
  if (!ferry::Version::parse(running, facts.running)) return usage("--version is not a semantic version: " + running);
  facts.secure_version = uint32_t(secure_version);
  facts.clock_valid = true;
  facts.now_ms = have_now ? now
                          : uint64_t(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count());
  facts.max_image_size = max_size;

  ferry::OtaCheck c = ferry::check_envelope(envelope, trusted.data(), trusted.size(), facts);
  if (c.reject != ferry::OtaReject::None) {
    print_result(false, ferry::reject_name(c.reject), c.detail, &c);
    std::fprintf(stderr, "verify_manifest: REFUSED (%s): %s\n", ferry::reject_name(c.reject), c.detail.c_str());
    return 1;
  }
  if (image) {
    std::ifstream f(image, std::ios::binary);
    if (!f) return usage(std::string("cannot read ") + image);
    ferry::ImageVerifier iv;
    iv.begin(c.manifest.image_size, c.manifest.image_sha256);
    std::vector<char> buf(ferry::kFlashSector);
    bool overflow = false;
    while (f && !overflow) {
      f.read(buf.data(), std::streamsize(buf.size()));
      std::streamsize n = f.gcount();
      if (n > 0 && !iv.update(reinterpret_cast<const uint8_t*>(buf.data()), std::size_t(n))) overflow = true;
    }
    ferry::ImageResult r = iv.finish();
    if (r != ferry::ImageResult::Ok) {
      std::string detail = r == ferry::ImageResult::HashMismatch
                               ? "image sha256 differs from the manifest's " + c.manifest.image_sha256_hex
                               : "image size differs from the manifest's " + std::to_string(c.manifest.image_size);
      print_result(false, ferry::image_result_name(r), detail, &c);
      std::fprintf(stderr, "verify_manifest: REFUSED (%s): %s\n", ferry::image_result_name(r), detail.c_str());
      return 1;
    }
  }
  std::string note = hw ? "" : "hw not checked (no --hw)";
  print_result(true, "", note, &c);
  std::fprintf(stderr, "verify_manifest: OK %s %s (key %s)%s%s\n", c.manifest.deployment.c_str(),
               c.manifest.version_text.c_str(), c.keyid.c_str(), note.empty() ? "" : "; ", note.c_str());
  return 0;
}
