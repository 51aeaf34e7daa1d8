// io/discover and io/mapped_file with special files: a FIFO, socket or broken symlink is
// refused by type (never opened, so nothing hangs) and reported, never passed over silently.
#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>

#include "fifo_unblocker.h"
#include "input_error_check.h"
#include "io/discover.h"
#include "io/mapped_file.h"
#include "io/tensor_source.h"
#include "test_support.h"

using muspec::discover_tensor_files;
using muspec_test::expect_input_error;
namespace fs = std::filesystem;

namespace {

bool has_line(const std::vector<std::string>& lines, const std::string& line) {
  return std::find(lines.begin(), lines.end(), line) != lines.end();
}

}  // namespace

TEST_CASE("discover: special entries in a directory are reported with their type", "[io][discover][bad-input]") {
  muspec_test::TempDir dir("discover");
  const fs::path d = dir.path() / "ckpt";
  fs::create_directories(d);
  fs::copy_file(muspec_test::fixture("numpy/tiny.safetensors"), d / "model.safetensors");
  REQUIRE(muspec_test::make_fifo((d / "pipe.safetensors").string()));
  REQUIRE(muspec_test::make_fifo((d / "notes").string()));
  fs::create_symlink(d / "gone.pt", d / "dangling.pt");
  fs::create_symlink(d / "gone.txt", d / "dangling.txt");
  const std::string root = d.lexically_normal().string();

  const auto r = discover_tensor_files({root});
  CHECK(r.files == std::vector<std::string>{root + "/model.safetensors"});
  CHECK(has_line(r.problems, root + "/pipe.safetensors: is a FIFO, not a regular file"));
  CHECK(has_line(r.problems, root + "/dangling.pt: is a broken symbolic link"));
  CHECK(r.problems.size() == 2);
  CHECK(has_line(r.ignored, root + "/notes: is a FIFO, not a regular file"));
  CHECK(has_line(r.ignored, root + "/dangling.txt: is a broken symbolic link"));
  CHECK(r.ignored.size() == 2);
}

TEST_CASE("discover: a FIFO or device given as a path is a problem, not a file to open", "[io][discover][bad-input]") {
  muspec_test::TempDir dir("discover");
  const std::string fifo = dir.file("x.safetensors");
  REQUIRE(muspec_test::make_fifo(fifo));
  const auto r = discover_tensor_files({fifo, "/dev/null"});
  CHECK(r.files.empty());
  CHECK(r.problems == std::vector<std::string>{fifo + ": is a FIFO, not a regular file",
                                               "/dev/null: is a character device, not a regular file"});
}

TEST_CASE("mapped file: a FIFO is refused before it is opened", "[io][bad-input]") {
  muspec_test::TempDir dir("discover");
  const std::string fifo = dir.file("m.safetensors");
  REQUIRE(muspec_test::make_fifo(fifo));
  muspec_test::FifoUnblocker unblock(fifo);  // without the check, open() waits for a writer
  expect_input_error([&] { muspec::MappedFile f(fifo); }, fifo, "", {"is a FIFO, not a regular file"});
  expect_input_error([&] { muspec::open_tensor_file(fifo); }, fifo, "", {"is a FIFO, not a regular file"});
  CHECK_FALSE(unblock.released_a_reader());
}
