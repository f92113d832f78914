// Debian's doctest-dev installs <doctest/doctest.h>; PlatformIO's doctest package is <doctest.h>.
#pragma once
#if __has_include(<doctest/doctest.h>)
#include <doctest/doctest.h>
#else
#include <doctest.h>
#endif
