// Issue 14, end to end: outputs of one command appear together or not at all, keep the mode
// of the files they replace, write through a symbolic link, and clean up temporaries of dead
// runs; ns eval/simulate refuse an output on an input; a small file declaring a huge matrix is
// skipped against the memory budget.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "test_support.h"

using muspec_test::read_text;
using muspec_test::RunResult;
using muspec_test::TempDir;
using muspec_test::write_bytes;
namespace fs = std::filesystem;

namespace {

RunResult muspec_sh(const std::string& prefix, const std::string& args) {
  return muspec_test::run_command(prefix + " timeout 120 '" + std::string(MUSPEC_BINARY) + "' " + args + " </dev/null");
}

std::string q(const std::string& p) { return "'" + p + "'"; }

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

mode_t mode_of(const std::string& path) {
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

std::string tiny_model(const TempDir& dir) {
  const std::string model = dir.file("m.safetensors");
  fs::copy_file(muspec_test::fixture("numpy/tiny.safetensors"), model);
  return model;
}

#if defined(__SANITIZE_ADDRESS__)
const char* const kLimitMemory = "";  // sanitizers reserve terabytes of address space
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
const char* const kLimitMemory = "";
#else
const char* const kLimitMemory = "ulimit -v 6000000; ";
#endif
#else
const char* const kLimitMemory = "ulimit -v 6000000; ";
#endif

}  // namespace

TEST_CASE("cli outputs: a failed --json leaves -o and --summary as they were", "[cli][outputs]") {
  TempDir dir("out");
  const std::string model = tiny_model(dir), h5 = dir.file("s.h5"), csv = dir.file("s.csv");
  write_bytes(h5, "old h5");
  write_bytes(csv, "old csv");
  // The JSON's directory does not exist: its write fails after the .h5 and .csv are written.
  const RunResult r = muspec_sh("", "scan " + q(model) + " -q -o " + q(h5) + " --summary " + q(csv) + " --json " +
                                        q(dir.file("missing/s.json")));
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK(read_text(h5) == "old h5");  // before: the new .h5 and .csv beside no (or an old) .json
  CHECK(read_text(csv) == "old csv");
  for (const auto& e : fs::directory_iterator(dir.path())) CHECK_FALSE(contains(e.path().string(), ".tmp."));
  // Without the failing output, all three are written.
  const RunResult ok = muspec_sh("", "scan " + q(model) + " -q -o " + q(h5) + " --summary " + q(csv) + " --json " +
                                         q(dir.file("s.json")));
  CHECK(ok.exit_code == 0);
  CHECK(read_text(h5) != "old h5");
  CHECK(contains(read_text(csv), "sigma_max"));
  CHECK(fs::exists(dir.file("s.json")));
}

TEST_CASE("cli outputs: modes are kept, new files follow the umask, symbolic links are written through", "[cli][outputs]") {
  TempDir dir("out");
  const std::string model = tiny_model(dir), csv = dir.file("s.csv"), json = dir.file("s.json");
  write_bytes(csv, "old");
  ::chmod(csv.c_str(), 0640);
  const std::string target = dir.file("real.h5"), link = dir.file("link.h5");
  fs::create_symlink(target, link);  // dangling until the scan writes the target
  const RunResult r = muspec_sh("umask 022;", "scan " + q(model) + " -q -o " + q(link) + " --summary " + q(csv) + " --json " + q(json));
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK(mode_of(csv) == 0640);   // before: 0644, the mode of a new file
  CHECK(mode_of(json) == 0644);
  CHECK(fs::is_symlink(link));   // before: the link was replaced by a regular file
  CHECK(fs::is_regular_file(target));
  CHECK(mode_of(target) == 0644);
}

TEST_CASE("cli outputs: temporaries left by a killed run are removed with a note", "[cli][outputs]") {
  TempDir dir("out");
  const std::string model = tiny_model(dir), csv = dir.file("s.csv");
  // A process id that no longer runs: a shell that has exited.
  const std::string dead = muspec_test::run_command("sh -c 'echo $$'").out;
  const std::string pid = dead.substr(0, dead.find('\n'));
  const std::string stale = csv + ".tmp." + pid + ".0badf00d", foreign = csv + ".tmp.notapid";
  write_bytes(stale, "half-written");
  write_bytes(foreign, "not ours");
  const RunResult r = muspec_sh("", "scan " + q(model) + " -q --summary " + q(csv));
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK_FALSE(fs::exists(stale));  // before: left forever
  CHECK(fs::exists(foreign));
  CHECK(contains(r.err, "removed " + stale));
}

TEST_CASE("cli outputs: ns eval and ns simulate refuse an output on an input", "[cli][outputs][reliability]") {
  TempDir dir("out");
  const std::string model = tiny_model(dir), h5 = dir.file("s.h5"), sched = dir.file("sched.json");
  write_bytes(h5, "not read before the refusal");
  write_bytes(sched, "{}");
  for (const std::string& args :
       {"ns eval --schedule quintic --spectra " + q(h5) + " -o " + q(h5),
        "ns eval --schedule " + q(sched) + " --spectra " + q(dir.file("other.h5")) + " -o " + q(sched),
        "ns simulate --schedule quintic " + q(model) + " -o " + q(model)}) {
    const std::string before_h5 = read_text(h5), before_model = read_text(model), before_sched = read_text(sched);
    const RunResult r = muspec_sh("", args);
    INFO(args << "\n" << r.err);
    CHECK(r.exit_code == 2);
    CHECK(contains(r.err, "is the input"));
    CHECK(read_text(h5) == before_h5);
    CHECK(read_text(model) == before_model);
    CHECK(read_text(sched) == before_sched);
  }
}

TEST_CASE("cli: a stride-0 view of 32768x32768 in a 1 KB .pt is skipped by the memory budget", "[cli][budget]") {
  TempDir dir("budget");
  const std::string pt = muspec_test::fixture("hostile_sizes/expand_view.pt"), json = dir.file("s.json");
  for (const std::string& how : {std::string("MUSPEC_MEMORY_BUDGET=1G "), std::string()}) {
    const std::string option = how.empty() ? " --memory-budget 1G" : "";
    const RunResult r = muspec_sh(std::string(kLimitMemory) + how, "scan " + q(pt) + " --device cpu -q --json " + q(json) + option);
    INFO(r.err);
    CHECK(r.exit_code == 1);
    CHECK(contains(r.err, "expanded"));
    CHECK(contains(r.err, "decoding needs 16.0 GiB"));
    CHECK(contains(r.err, "memory budget is 1.0 GiB"));
    const auto doc = nlohmann::json::parse(read_text(json));
    REQUIRE(doc["matrices"].size() == 1);  // "ok" is analysed
    CHECK(doc["matrices"][0]["tensor"] == "ok");
  }
}
