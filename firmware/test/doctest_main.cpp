// The one doctest main for the host suite (make test links every test_*/ file into one binary).
// Under PlatformIO (`pio test -e native`) each test_* folder is its own program and this file, in
// test/'s root, is compiled into each; PlatformIO parses the output itself and wants the
// "success" and "no-exitcode" options (docs.platformio.org, doctest framework page).
#define DOCTEST_CONFIG_IMPLEMENT
#include "fakes/doctest.h"

int main(int argc, char** argv) {
  doctest::Context context;
#ifdef PIO_UNIT_TESTING
  context.setOption("success", true);
  context.setOption("no-exitcode", true);
#endif
  context.applyCommandLine(argc, argv);
  return context.run();
}
