// The scan journal (scan/journal.h): its reader against hostile bytes, resuming from it, and
// scans killed with SIGKILL at random moments then resumed, against an uninterrupted scan.
#include <catch2/catch.hpp>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <thread>

#include "core/error.h"
#include "scan/journal.h"
#include "scan/scan.h"
#include "store/spectra_store.h"
#include "spectra/summary.h"
#include "test_support.h"

extern char** environ;

using muspec_test::run_muspec;
using muspec_test::TempDir;

void require_same_store(const std::string& expected_path, const std::string& actual_path);  // test_scan_shard.cpp

namespace {

muspec::SpectrumRecord sample_record(int k) {
  muspec::SpectrumRecord r;
  r.name = r.tensor = r.parameter = "layers." + std::to_string(k) + ".w";
  r.file = "model.safetensors";
  r.rows = 3, r.cols = 4, r.tensor_shape = {3, 4};
  r.dtype = "BF16", r.transform = "none", r.method = "gram", r.device = "cpu", r.run = "run", r.step = 100 + k;
  r.rel_depth = 0.25, r.muon = true, r.floor = 1e-9;
  r.sigma = {0.5, 1.0 + k, 2.0 + k};
  const double frob = std::sqrt(0.25 + (1.0 + k) * (1.0 + k) + (2.0 + k) * (2.0 + k));
  r.summary = muspec::summarize_spectrum(r.sigma, frob, r.floor, {0.1, 0.5, 0.9});
  return r;
}

muspec::JournalHeader sample_header() { return {"00fingerprint", "00stamp", "quantiles 0.5", 5}; }

std::string sample_journal(int entries) {
  std::string bytes = muspec::encode_journal_header(sample_header());
  for (int k = 0; k < entries; ++k) {
    muspec::JournalEntry e{k, {sample_record(k)}, {}};
    if (k == 1) {  // a NaN matrix: kept as an unanalysed record and an issue
      muspec::SpectrumRecord nan = sample_record(9);
      nan.sigma.clear(), nan.nonfinite = 3, nan.summary.sigma_max = NAN;
      e.records.push_back(nan);
      e.skipped.push_back({"model.safetensors", nan.name, "3 non-finite entries"});
    }
    bytes += muspec::encode_journal_entry(e);
  }
  return bytes;
}

}  // namespace

TEST_CASE("journal: entries read back as written", "[journal]") {
  const auto j = muspec::parse_journal(sample_journal(3), "j");
  CHECK(j.damage.empty());
  CHECK(j.header.options == "quantiles 0.5");
  CHECK(j.header.matrices == 5);
  REQUIRE(j.entries.size() == 3);
  CHECK(j.entries[2].records[0].sigma == std::vector<double>{0.5, 3.0, 4.0});
  CHECK(j.entries[2].records[0].step == 102);
  REQUIRE(j.entries[1].records.size() == 2);
  CHECK(std::isnan(j.entries[1].records[1].summary.sigma_max));
  CHECK(j.entries[1].skipped.at(0).reason == "3 non-finite entries");
}

TEST_CASE("journal: every truncation keeps the whole entries before the cut", "[journal][hostile]") {
  const std::string full = sample_journal(3);
  const size_t header = muspec::encode_journal_header(sample_header()).size();
  std::vector<size_t> ends = {header};
  for (int k = 0; k < 3; ++k) ends.push_back(ends.back() + muspec::encode_journal_entry(muspec::parse_journal(full, "j").entries[k]).size());
  REQUIRE(ends.back() == full.size());
  for (size_t cut = 0; cut <= full.size(); ++cut) {
    const std::string bytes = full.substr(0, cut);
    if (cut < header) {
      CHECK_THROWS_AS(muspec::parse_journal(bytes, "j"), muspec::InputError);
      continue;
    }
    const auto j = muspec::parse_journal(bytes, "j");
    const size_t whole = static_cast<size_t>(std::upper_bound(ends.begin(), ends.end(), cut) - ends.begin()) - 1;
    CHECK(j.entries.size() == whole);
    CHECK(j.valid_bytes == ends[whole]);
    CHECK(j.damage.empty() == (cut == ends[whole]));
  }
}

TEST_CASE("journal: a changed byte ends the entries at the damaged one", "[journal][hostile]") {
  const std::string full = sample_journal(3);
  const size_t header = muspec::encode_journal_header(sample_header()).size();
  std::mt19937 rng(5);
  for (int trial = 0; trial < 300; ++trial) {
    std::string bytes = full;
    const size_t at = header + rng() % (full.size() - header);
    bytes[at] = static_cast<char>(bytes[at] ^ (1 + rng() % 255));
    const auto j = muspec::parse_journal(bytes, "j");
    CHECK(j.entries.size() < 3);
    CHECK_FALSE(j.damage.empty());
    CHECK(j.valid_bytes <= at);
  }
  CHECK_THROWS_WITH(muspec::parse_journal("MUSPECJ2" + full.substr(8), "jj"), Catch::Contains("jj") && Catch::Contains("not a muspec scan journal"));
}

namespace {

const std::string kInputs = muspec_test::source_dir() + "/sample_data/synthetic " + muspec_test::source_dir() + "/sample_data/numpy";

/// The options `muspec scan` gives run_scan for these inputs.
muspec::ScanOptions cli_options(const std::string& journal) {
  muspec::ScanOptions o;
  o.paths = {muspec_test::source_dir() + "/sample_data/synthetic", muspec_test::source_dir() + "/sample_data/numpy"};
  o.quantiles = muspec::default_quantiles();
  o.threads = 2;
  o.journal = journal;
  return o;
}

bool leftovers(const TempDir& dir) {
  for (const auto& e : muspec_test::fs::directory_iterator(dir.path()))
    if (e.path().filename().string().find(".tmp.") != std::string::npos || e.path().extension() == ".journal") return true;
  return false;
}

}  // namespace

TEST_CASE("journal: --resume takes the finished matrices from the journal", "[journal][cli]") {
  TempDir dir("resume");
  const std::string out = dir.file("s.h5"), journal = out + ".journal";
  // A complete journal from an in-process scan; one record's label is changed, so the output
  // shows whether the record came from the journal or was computed again.
  muspec::run_scan(cli_options(journal));
  auto contents = muspec::parse_journal(muspec_test::read_text(journal), journal);
  REQUIRE(contents.entries.size() >= 3);
  contents.entries[0].records[0].parameter = "from-the-journal";
  std::string bytes = muspec::encode_journal_header(contents.header);
  for (const auto& e : contents.entries) bytes += muspec::encode_journal_entry(e);
  muspec_test::write_bytes(journal, bytes);

  const auto r = run_muspec("scan " + kInputs + " -o " + out + " -q --threads 2 --resume");
  INFO(r.err);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.err, Catch::Contains("resuming") && Catch::Contains(std::to_string(contents.entries.size()) + " of"));
  bool found = false;
  for (const auto& rec : muspec::read_spectra_h5(out).records) found |= rec.parameter == "from-the-journal";
  CHECK(found);
  CHECK_FALSE(leftovers(dir));  // the journal is removed on success
}

TEST_CASE("journal: a journal of another scan is refused with the reason", "[journal][cli]") {
  TempDir dir("alien");
  const std::string out = dir.file("s.h5"), journal = out + ".journal";
  muspec_test::write_bytes(journal, muspec::encode_journal_header({"f", "s", "quantiles 0.5, method svd", 2}));
  auto r = run_muspec("scan " + kInputs + " -o " + out + " -q");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains(journal) && Catch::Contains("other options") && Catch::Contains("method svd"));
  CHECK_FALSE(muspec_test::fs::exists(out));
  muspec_test::write_bytes(journal, "not a journal at all");
  r = run_muspec("scan " + kInputs + " -o " + out + " -q --resume");
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.err, Catch::Contains(journal) && Catch::Contains("not a muspec scan journal"));
}

TEST_CASE("journal: a scan that analyses nothing leaves no journal to block the next one", "[journal][cli]") {
  // Before: `scan missing.safetensors -o s.h5` exited 2 ("no matrix was analysed") but left
  // s.h5.journal, and the next scan to s.h5 was refused as "another scan".
  TempDir dir("nothing");
  const std::string out = dir.file("s.h5");
  auto r = run_muspec("scan " + dir.file("missing.safetensors") + " -o " + out + " -q");
  CHECK(r.exit_code == 2);
  CHECK_FALSE(muspec_test::fs::exists(out + ".journal"));
  r = run_muspec("scan " + kInputs + " -o " + out + " -q");
  INFO(r.err);
  CHECK(r.exit_code == 0);
  CHECK_FALSE(leftovers(dir));
}

#if defined(__SANITIZE_ADDRESS__)
constexpr int kKillTrials = 4;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr int kKillTrials = 4;
#else
constexpr int kKillTrials = 10;
#endif
#else
constexpr int kKillTrials = 10;
#endif

TEST_CASE("journal: scans killed at random moments resume to the uninterrupted outputs", "[journal][cli][kill]") {
  TempDir dir("kill");
  // A real training run's checkpoints (many small matrices: kills land mid-scan) and numpy files.
  const std::string inputs = muspec_test::source_dir() + "/sample_data/runs/d16 " + muspec_test::source_dir() + "/sample_data/numpy";
  const std::string args = " -q --threads 1 --summary ";
  const std::string ref = dir.file("ref.h5");
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(run_muspec("scan " + inputs + " -o " + ref + args + dir.file("ref.csv")).exit_code == 0);
  const double full_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  std::mt19937 rng(1234);
  int killed_mid_scan = 0;
  for (int trial = 0; trial < kKillTrials; ++trial) {
    TempDir run("killrun");
    const std::string out = run.file("s.h5"), csv = run.file("s.csv");
    const std::string cmd = std::string("exec '") + MUSPEC_BINARY + "' scan " + inputs + " -o " + out + args + csv;
    const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
    pid_t pid;
    REQUIRE(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char**>(argv), environ) == 0);
    const auto delay = std::chrono::microseconds(static_cast<int64_t>(full_ms * 1000 * (rng() % 1000) / 1000.0));
    std::this_thread::sleep_for(delay);
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) {
      ++killed_mid_scan;
      // After a kill the final paths hold nothing or the whole outputs, never a part.
      if (muspec_test::fs::exists(out)) require_same_store(ref, out);
    }
    const auto r = run_muspec("scan " + inputs + " -o " + out + args + csv + " --resume");
    INFO("trial " << trial << " killed after " << delay.count() << " us: " << r.err);
    REQUIRE(r.exit_code == 0);
    require_same_store(ref, out);
    CHECK(muspec_test::read_text(csv) == muspec_test::read_text(dir.file("ref.csv")));
    CHECK_FALSE(leftovers(run));
  }
  CHECK(killed_mid_scan >= kKillTrials / 3);  // most kills land before the scan ends
}
