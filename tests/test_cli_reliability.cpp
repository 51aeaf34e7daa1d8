// End-to-end: what muspec promises under hostile paths and documents (docs/reliability.md).
// Each case failed before issue 14: an output on an input replaced it (exit 0), a FIFO hung
// the process, a deeply nested laws.json or schedule file crashed it (SIGSEGV).
// Every command runs under `timeout`, so old behaviour fails a test instead of hanging ctest.
#include <catch2/catch.hpp>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "fifo_unblocker.h"
#include "test_support.h"

using muspec_test::read_text;
using muspec_test::RunResult;
using muspec_test::TempDir;
using muspec_test::write_bytes;
namespace fs = std::filesystem;

namespace {

RunResult muspec_bounded(const std::string& args) {
  return muspec_test::run_command(std::string("timeout 60 '") + MUSPEC_BINARY + "' " + args + " </dev/null");
}

bool contains(const std::string& hay, const std::string& needle) { return hay.find(needle) != std::string::npos; }

std::string q(const std::string& p) { return "'" + p + "'"; }

/// Refused with exit 2, the message naming both paths, and `input` byte-identical afterwards.
void expect_refused(const std::string& args, const std::string& input, const std::string& output, const char* why) {
  const std::string before = read_text(input);
  const RunResult r = muspec_bounded(args);
  INFO(args << "\nstdout: " << r.out << "\nstderr: " << r.err);
  CHECK(r.exit_code == 2);
  CHECK(contains(r.err, why));
  CHECK(contains(r.err, "'" + output + "'"));
  CHECK(read_text(input) == before);
}

std::string deep_array(size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

}  // namespace

TEST_CASE("cli reliability: scan refuses outputs that are inputs or each other", "[cli][reliability]") {
  TempDir dir("rel");
  const std::string model = dir.file("m.safetensors");
  fs::copy_file(muspec_test::fixture("numpy/tiny.safetensors"), model);
  fs::create_directories(dir.path() / "ckpt" / "step_1");
  const std::string inner = dir.file("ckpt/step_1/model.safetensors"), config = dir.file("ckpt/step_1/config.json");
  fs::copy_file(model, inner);
  write_bytes(config, "{}");

  expect_refused("scan " + q(model) + " -o " + q(model), model, model, "is the input");
  expect_refused("scan " + q(model) + " -o " + q(dir.file("s.h5")) + " --summary " + q(model), model, model, "is the input");
  expect_refused("scan " + q(dir.file("ckpt")) + " --json " + q(inner), inner, inner, "lies inside the input directory");
  expect_refused("scan " + q(dir.file("ckpt")) + " --json " + q(config), config, config, "lies inside the input directory");
  const std::string same = dir.file("out.csv");
  const RunResult two = muspec_bounded("scan " + q(model) + " --summary " + q(same) + " --json " + q(dir.file("./out.csv")));
  CHECK(two.exit_code == 2);
  CHECK(contains(two.err, "are the same file"));
  CHECK_FALSE(fs::exists(same));
  // An output beside the inputs that the scan does not read is fine.
  CHECK(muspec_bounded("scan " + q(dir.file("ckpt")) + " -q -o " + q(dir.file("ckpt/spectra.h5"))).exit_code == 0);
}

TEST_CASE("cli reliability: fit, plot, predict, recommend and plan refuse an output on their input", "[cli][reliability]") {
  TempDir dir("rel");
  const std::string h5 = dir.file("s.h5"), laws = dir.file("laws.svg"), link = dir.file("link.json");
  write_bytes(h5, "not checked before the refusal");
  write_bytes(laws, "{}");
  fs::create_symlink(laws, link);
  expect_refused("fit " + q(h5) + " -o " + q(h5), h5, h5, "is the input");
  expect_refused("fit " + q(h5) + " -o " + q(dir.file("l.json")) + " --csv " + q(h5), h5, h5, "is the input");
  expect_refused("plot " + q(laws) + " -o " + q(laws), laws, laws, "is the input");
  expect_refused("predict --laws " + q(laws) + " --params 1e9 -o " + q(link), laws, link, "is the input");
  expect_refused("recommend --laws " + q(laws) + " --params 1e9 --layers 4 -o " + q(laws), laws, laws, "is the input");
  expect_refused("recommend --spectra " + q(h5) + " -o " + q(h5), h5, h5, "is the input");
  expect_refused("plan --spectra " + q(h5) + " --mean-steps 4 -o " + q(h5), h5, h5, "is the input");
}

TEST_CASE("cli reliability: FIFOs given as paths are refused, never waited on", "[cli][reliability][fifo]") {
  TempDir dir("rel");
  const std::string fifo = dir.file("pipe.safetensors"), json_fifo = dir.file("pipe.json");
  REQUIRE(muspec_test::make_fifo(fifo));
  REQUIRE(muspec_test::make_fifo(json_fifo));
  const std::string model = dir.file("m.safetensors");
  fs::copy_file(muspec_test::fixture("numpy/tiny.safetensors"), model);
  for (const std::string& args :
       {"scan " + q(fifo), "scan " + q(model) + " --manifest " + q(json_fifo), "scan " + q(model) + " --param-map " + q(json_fifo),
        "predict --laws " + q(json_fifo) + " --params 1e9", "plot " + q(json_fifo) + " -o " + q(dir.file("x.svg")),
        "recommend --spectra " + q(json_fifo) + " -o " + q(dir.file("c.json")),
        "fit " + q(json_fifo) + " -o " + q(dir.file("l.json"))}) {
    const RunResult r = muspec_bounded(args);
    INFO(args << "\nstderr: " << r.err);
    CHECK(r.exit_code == 2);
    CHECK(contains(r.err, "is a FIFO, not a regular file"));
  }
  // ns resolves a schedule argument by name first; a FIFO is not a schedule file either way.
  CHECK(muspec_bounded("ns show " + q(json_fifo)).exit_code == 2);
}

TEST_CASE("cli reliability: special files inside a scanned directory are named", "[cli][reliability][fifo]") {
  TempDir dir("rel");
  const fs::path d = dir.path() / "ckpt";
  fs::create_directories(d);
  fs::copy_file(muspec_test::fixture("numpy/tiny.safetensors"), d / "model.safetensors");
  REQUIRE(muspec_test::make_fifo((d / "shard.safetensors").string()));
  REQUIRE(muspec_test::make_fifo((d / "control").string()));
  fs::create_symlink(d / "missing.pt", d / "latest.pt");
  const RunResult r = muspec_bounded("scan -q " + q(d.string()));
  INFO(r.err);
  CHECK(r.exit_code == 1);  // analysed, but inputs were skipped
  CHECK(contains(r.err, "skipped " + (d / "shard.safetensors").string() + ": is a FIFO, not a regular file"));
  CHECK(contains(r.err, "skipped " + (d / "latest.pt").string() + ": is a broken symbolic link"));
  CHECK(contains(r.err, "note: ignored " + (d / "control").string() + ": is a FIFO, not a regular file"));
}

TEST_CASE("cli reliability: deeply nested JSON is refused, not a stack overflow", "[cli][reliability][json]") {
  TempDir dir("rel");
  const std::string laws = dir.file("laws.json"), schedule = dir.file("deep.json");
  write_bytes(laws, "{\"format\": \"muspec.laws\", \"version\": " + deep_array(1000000) + "}");
  const RunResult shown = muspec_bounded("ns show keller --json");
  REQUIRE(shown.exit_code == 0);
  nlohmann::json s = nlohmann::json::parse(shown.out);
  s["metadata"] = "DEEP";
  std::string text = s.dump();
  text.replace(text.find("\"DEEP\""), 6, "{\"x\": " + deep_array(1000000) + "}");
  write_bytes(schedule, text);
  for (const std::string& args :
       {"predict --laws " + q(laws) + " --params 1e9", "plot " + q(laws) + " -o " + q(dir.file("l.svg")),
        "recommend --laws " + q(laws) + " --params 1e9 --layers 4 -o " + q(dir.file("c.json")), "ns show " + q(schedule),
        "ns threshold -s " + q(schedule)}) {
    const RunResult r = muspec_bounded(args);
    INFO(args << "\nstderr: " << r.err.substr(0, 2000));
    CHECK(r.exit_code == 2);
    CHECK(contains(r.err, "JSON nests deeper than 64 levels"));
  }
}
