// Outputs are never renamed over something that is not a regular file: `--json /dev/null` run as
// root once replaced /dev/null with a regular file. A FIFO stands in for a device here (a test
// must not risk the machine's /dev/null); the code path is the same (core/atomic_file.cpp).
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "core/atomic_file.h"
#include "core/error.h"
#include "test_support.h"

using muspec_test::TempDir;
namespace fs = std::filesystem;

namespace {
bool is_fifo(const std::string& p) {
  struct stat st;
  return ::lstat(p.c_str(), &st) == 0 && S_ISFIFO(st.st_mode);
}
}  // namespace

TEST_CASE("an output path that is a FIFO, directly or through a link, is refused and left alone", "[outputs][atomic]") {
  TempDir dir("out-fifo");
  const std::string fifo = dir.file("pipe"), link = dir.file("link.json");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  fs::create_symlink(fifo, link);
  for (const std::string& target : {fifo, link}) {
    try {
      muspec::write_file_atomically(target, "{}\n");
      FAIL("no error for " << target);
    } catch (const muspec::UsageError& e) {
      CHECK_THAT(e.what(), Catch::Contains("is a FIFO") && Catch::Contains(target));
    }
    CHECK(is_fifo(fifo));
  }
  for (const auto& e : fs::directory_iterator(dir.path()))
    CHECK(e.path().filename().string().find(".tmp.") == std::string::npos);
}

TEST_CASE("cli: scan --json onto a FIFO exits 2 and keeps the FIFO", "[cli][outputs]") {
  TempDir dir("cli-out-fifo");
  const std::string fifo = dir.file("out.json");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  const std::string input = muspec_test::source_dir() + "/sample_data/synthetic";
  const auto r = muspec_test::run_command(std::string("timeout 60 '") + MUSPEC_BINARY + "' scan '" + input + "' -q --json '" +
                                          fifo + "' </dev/null");
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("is a FIFO") != std::string::npos);
  CHECK(is_fifo(fifo));
}
