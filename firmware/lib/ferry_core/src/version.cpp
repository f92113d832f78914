#include "ferry/version.h"

#include <algorithm>

namespace ferry {
namespace {

constexpr uint64_t kMaxSafe = (uint64_t(1) << 53) - 1;  // Number.MAX_SAFE_INTEGER on the signing side

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ident_char(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-'; }
bool all_digits(std::string_view s) {
  for (char c : s) if (!is_digit(c)) return false;
  return !s.empty();
}

// A numeric identifier: "0" or no leading zero, value <= 2^53-1.
bool numeric(std::string_view s, uint64_t& out) {
  if (!all_digits(s) || (s.size() > 1 && s[0] == '0') || s.size() > 16) return false;
  out = 0;
  for (char c : s) out = out * 10 + uint64_t(c - '0');
  return out <= kMaxSafe;
}

bool split_idents(std::string_view s, std::vector<std::string>& out, bool prerelease) {
  if (s.empty()) return false;
  std::size_t start = 0;
  for (;;) {
    std::size_t dot = s.find('.', start);
    std::string_view id = s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (id.empty()) return false;
    for (char c : id) if (!is_ident_char(c)) return false;
    if (prerelease && all_digits(id)) {
      uint64_t ignored;
      if (!numeric(id, ignored)) return false;
    }
    out.emplace_back(id);
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

int cmp_u64(uint64_t a, uint64_t b) { return a < b ? -1 : a > b ? 1 : 0; }

}  // namespace

bool Version::parse(std::string_view text, Version& out) {
  out = Version{};
  if (text.empty() || text.size() > 64) return false;
  std::size_t plus = text.find('+');
  std::string_view core_pre = text.substr(0, plus);
  if (plus != std::string_view::npos) {
    std::vector<std::string> build;
    if (!split_idents(text.substr(plus + 1), build, false)) return false;
  }
  std::size_t dash = core_pre.find('-');
  std::string_view core = core_pre.substr(0, dash);
  if (dash != std::string_view::npos && !split_idents(core_pre.substr(dash + 1), out.prerelease, true)) return false;
  uint64_t* parts[3] = {&out.major, &out.minor, &out.patch};
  std::size_t start = 0;
  for (int i = 0; i < 3; ++i) {
    std::size_t dot = core.find('.', start);
    if ((i < 2) != (dot != std::string_view::npos)) return false;
    std::string_view n = core.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (!numeric(n, *parts[i])) return false;
    start = dot + 1;
  }
  return true;
}

int compare(const Version& a, const Version& b) {
  if (int c = cmp_u64(a.major, b.major)) return c;
  if (int c = cmp_u64(a.minor, b.minor)) return c;
  if (int c = cmp_u64(a.patch, b.patch)) return c;
  // A release has higher precedence than any pre-release of it (§11.3).
  if (a.prerelease.empty() || b.prerelease.empty()) {
    return a.prerelease.empty() == b.prerelease.empty() ? 0 : (a.prerelease.empty() ? 1 : -1);
  }
  std::size_t n = std::min(a.prerelease.size(), b.prerelease.size());
  for (std::size_t i = 0; i < n; ++i) {
    const std::string& x = a.prerelease[i];
    const std::string& y = b.prerelease[i];
    bool xn = all_digits(x), yn = all_digits(y);
    int c;
    if (xn && yn) {
      uint64_t xv = 0, yv = 0;
      numeric(x, xv);
      numeric(y, yv);
      c = cmp_u64(xv, yv);
    } else if (xn != yn) {
      c = xn ? -1 : 1;  // numeric identifiers sort before alphanumeric ones (§11.4.3)
    } else {
      c = x < y ? -1 : x > y ? 1 : 0;  // ASCII order (§11.4.2)
    }
    if (c) return c;
  }
  return cmp_u64(a.prerelease.size(), b.prerelease.size());  // more fields win when all else is equal
}

}  // namespace ferry
