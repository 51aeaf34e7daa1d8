// core/output_guard: an output that resolves to an input (by path or by inode), to a file the
// command reads inside an input directory, or to another output is refused before any work.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>

#include "core/error.h"
#include "core/output_guard.h"
#include "test_support.h"

using muspec::NamedPath;
using muspec::refuse_clobbering;
namespace fs = std::filesystem;

namespace {

void expect_refused(const std::vector<NamedPath>& in, const std::vector<NamedPath>& out,
                    std::initializer_list<const char*> parts, const muspec::ReadsInside& reads = nullptr) {
  try {
    refuse_clobbering(in, out, reads);
    FAIL("not refused");
  } catch (const muspec::UsageError& e) {
    INFO(e.what());
    for (const char* p : parts) CHECK(std::string(e.what()).find(p) != std::string::npos);
  }
}

}  // namespace

TEST_CASE("output guard: an output that is an input", "[core][outputs]") {
  muspec_test::TempDir dir("guard");
  const std::string in = dir.file("m.safetensors"), link = dir.file("link.safetensors"), hard = dir.file("hard");
  muspec_test::write_bytes(in, "x");
  fs::create_symlink(in, link);
  fs::create_hard_link(in, hard);
  const std::vector<NamedPath> inputs = {{"input", in}};
  expect_refused(inputs, {{"-o", in}}, {"output -o '", "is the input input '", in.c_str()});
  expect_refused(inputs, {{"--json", dir.file("sub/../m.safetensors")}}, {"--json"});  // lexically different
  expect_refused(inputs, {{"-o", link}}, {link.c_str(), in.c_str()});                  // through a symlink
  expect_refused(inputs, {{"-o", hard}}, {hard.c_str()});                              // same inode
  const std::string cwd = fs::current_path().string();
  fs::current_path(dir.path());
  expect_refused(inputs, {{"-o", "m.safetensors"}}, {"'m.safetensors'"});              // relative
  fs::current_path(cwd);
  CHECK_NOTHROW(refuse_clobbering(inputs, {{"-o", dir.file("out.h5")}, {"--summary", ""}}));
}

TEST_CASE("output guard: files read inside an input directory", "[core][outputs]") {
  muspec_test::TempDir dir("guard");
  fs::create_directories(dir.path() / "run" / "step_1");
  fs::create_directories(dir.path() / "runs");
  const auto reads = [](const std::string& p) { return p.size() > 12 && p.substr(p.size() - 12) == ".safetensors"; };
  const std::vector<NamedPath> inputs = {{"input", dir.file("run")}};
  expect_refused(inputs, {{"-o", dir.file("run/step_1/model.safetensors")}}, {"lies inside the input directory"}, reads);
  expect_refused(inputs, {{"-o", dir.file("run")}}, {"is the input"}, reads);
  CHECK_NOTHROW(refuse_clobbering(inputs, {{"-o", dir.file("run/spectra.h5")}}, reads));   // not read by the scan
  CHECK_NOTHROW(refuse_clobbering(inputs, {{"-o", dir.file("runs/x.safetensors")}}, reads));  // a sibling, not inside
  CHECK_NOTHROW(refuse_clobbering(inputs, {{"-o", dir.file("run/step_1/model.safetensors")}}));  // no predicate
}

TEST_CASE("output guard: two outputs on one path", "[core][outputs]") {
  muspec_test::TempDir dir("guard");
  expect_refused({}, {{"-o", dir.file("a.csv")}, {"--json", dir.file("./a.csv")}},
                 {"outputs -o '", "and --json '", "are the same file"});
  CHECK_NOTHROW(refuse_clobbering({}, {{"-o", dir.file("a.csv")}, {"--json", dir.file("a.json")}}));
}
