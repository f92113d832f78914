// Semantic Versioning 2.0.0 parsing and precedence (https://semver.org/spec/v2.0.0.html §2, §9-11),
// the same rules as ota-server/src/manifest/semver.ts, which signs the versions this code compares.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ferry {

struct Version {
  uint64_t major = 0, minor = 0, patch = 0;
  std::vector<std::string> prerelease;  ///< Build metadata is dropped: it has no precedence.

  /// Strict parse: MAJOR.MINOR.PATCH[-pre][+build], no leading zeros in numeric parts, at most 64
  /// characters and numbers below 2^53 (so both sides of the system agree on every comparison).
  static bool parse(std::string_view text, Version& out);
};

/// -1, 0 or 1 by semver precedence (§11).
int compare(const Version& a, const Version& b);

}  // namespace ferry
