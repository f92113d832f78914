#include <string>

#include "fakes/doctest.h"
#include "ferry/version.h"

namespace {
int cmp(const char* a, const char* b) {
  ferry::Version x, y;
  REQUIRE_MESSAGE(ferry::Version::parse(a, x), a);
  REQUIRE_MESSAGE(ferry::Version::parse(b, y), b);
  return ferry::compare(x, y);
}
}  // namespace

TEST_SUITE("version") {
  TEST_CASE("orders versions as semver.org §11 does") {
    // The precedence chain from the spec, each strictly lower than the next.
    const char* chain[] = {"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
                           "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0", "10.0.0"};
    const std::size_t n = sizeof chain / sizeof chain[0];
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t j = 0; j < n; ++j) {
        int want = i < j ? -1 : i > j ? 1 : 0;
        CHECK_MESSAGE(cmp(chain[i], chain[j]) == want, chain[i], " vs ", chain[j]);
      }
    }
  }

  TEST_CASE("ignores build metadata") {
    CHECK(cmp("1.0.0+a", "1.0.0+b") == 0);
    CHECK(cmp("1.0.0-rc.1+x", "1.0.0-rc.1") == 0);
  }

  TEST_CASE("refuses what is not semver 2.0.0") {
    for (const char* s : {"", "1", "1.2", "1.2.3.4", "01.2.3", "1.02.3", "1.2.03", "1.2.3-", "1.2.3-01", "1.2.3-a..b",
                          "1.2.3+", "1.2.3+a..b", "v1.2.3", "1.2.3 ", "-1.2.3", "1.2.3-é", "9007199254740992.0.0"}) {
      ferry::Version v;
      CHECK_MESSAGE(!ferry::Version::parse(s, v), s);
    }
    ferry::Version v;
    CHECK(ferry::Version::parse("9007199254740991.0.0-0.x-y.00a+build.01", v));
    CHECK(!ferry::Version::parse(std::string(60, '1') + ".0.0", v));
  }
}
