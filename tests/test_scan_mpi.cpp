// `mpirun -n N muspec scan` (analysis/scan/mpi_scan.h): the store, CSV and JSON that rank 0
// writes for 1, 2 and 3 ranks hold the records of the one-process scan, bit for bit, in its order.
// The MPI cases run only in builds with MPI (MUSPEC_MPIEXEC); a build without MPI is checked to
// refuse an MPI launch instead of letting every rank write the outputs.
#include <catch2/catch.hpp>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "test_support.h"

using muspec_test::read_text;
using muspec_test::run_command;
using muspec_test::run_muspec;
using muspec_test::TempDir;

extern char** environ;

void require_same_store(const std::string& expected_path, const std::string& actual_path);  // test_scan_shard.cpp
void write_npy(const std::string& path, const std::vector<int64_t>& shape, const std::vector<float>& data);  // same

namespace {

// kSanitized (test_support.h): the ASan build runs the same suite, one MPI run there

/// Files left in `dir` whose name contains `part` (journals, temporaries).
int files_containing(const TempDir& dir, const std::string& part) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    n += e.path().filename().string().find(part) != std::string::npos ? 1 : 0;
  return n;
}

/// K of the progress line "scanning K matrices (...)", or "".
std::string progress_total(const std::string& err) {
  const size_t at = err.find("scanning ");
  if (at == std::string::npos) return "";
  const size_t end = err.find(" matrices", at);
  return end == std::string::npos ? "" : err.substr(at + 9, end - at - 9);
}

#ifdef MUSPEC_MPIEXEC
/// mpirun as CI runs it: as root, more ranks than the 2 cores, shared memory and loopback only,
/// no ssh (one machine), no cross-process memory copy (containers often forbid it). LeakSanitizer
/// would report Open MPI's own allocations: off for it.
std::string mpirun(int ranks) {
  return "ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 OMPI_MCA_plm_rsh_agent= '" + std::string(MUSPEC_MPIEXEC) +
         "' --allow-run-as-root --oversubscribe --mca btl self,vader --mca btl_vader_single_copy_mechanism none -n " +
         std::to_string(ranks) + " '" + MUSPEC_BINARY + "' ";
}

/// One-process scan of `inputs`, then `mpirun -n N` scans: same records, CSV and JSON; same exit
/// code; the table on stdout once (rank 0 only); no journal or temporary left.
void check_mpi_equals_one_process(const std::string& inputs, const std::vector<int>& rank_counts) {
  TempDir dir("mpi");
  const auto w = run_muspec("scan " + inputs + " -o " + dir.file("one.h5") + " --summary " + dir.file("one.csv") + " --json " +
                            dir.file("one.json") + " --threads 2 --max-rows 1");
  INFO(w.err);
  REQUIRE(w.exit_code <= 1);
  const std::string total = progress_total(w.err);  // "scanning K matrices" of the one-process scan
  REQUIRE(!total.empty());
  for (int n : rank_counts) {
    const std::string tag = "n" + std::to_string(n);
    const auto r = run_command(mpirun(n) + "scan " + inputs + " -o " + dir.file(tag + ".h5") + " --summary " + dir.file(tag + ".csv") +
                               " --json " + dir.file(tag + ".json") + " --max-rows 1");
    INFO(n << " ranks\n" << r.err);
    REQUIRE(r.exit_code == w.exit_code);
    require_same_store(dir.file("one.h5"), dir.file(tag + ".h5"));
    CHECK(read_text(dir.file(tag + ".csv")) == read_text(dir.file("one.csv")));
    CHECK(read_text(dir.file(tag + ".json")) == read_text(dir.file("one.json")));
    const std::string done = "matrices analysed with";
    const size_t first = r.out.find(done);
    CHECK(first != std::string::npos);
    CHECK(r.out.find(done, first + 1) == std::string::npos);  // the other ranks are quiet
    // Progress: rank 0 alone, over every rank's matrices (the one-process total, counted to the end).
    CHECK(progress_total(r.err) == total);
    CHECK(r.err.find("scanning ", r.err.find("scanning ") + 1) == std::string::npos);
    CHECK(r.err.find("scanned " + total + "/" + total + " matrices") != std::string::npos);
  }
  CHECK(files_containing(dir, "journal") == 0);
  CHECK(files_containing(dir, ".tmp") == 0);
}
#endif

}  // namespace

#ifdef MUSPEC_MPIEXEC

TEST_CASE("mpi: sample_data on 1, 2 and 3 ranks is the one-process scan", "[mpi][cli][e2e]") {
  const std::string data = muspec_test::source_dir() + "/sample_data";
  if (muspec_test::kSanitized)
    check_mpi_equals_one_process(data + "/runs/d16 " + data + "/numpy", {2});
  else
    check_mpi_equals_one_process(data, {1, 2, 3});
}

TEST_CASE("mpi: a NaN matrix and a stack on another rank are reported by rank 0 (exit 1)", "[mpi][cli]") {
  if (muspec_test::kSanitized) return;  // sample_data above covers the exchange in the ASan build
  TempDir src("mpisrc");
  std::mt19937 rng(5);
  std::normal_distribution<float> normal;
  std::vector<float> stack(4 * 24 * 16), nan_matrix(20 * 20);
  for (float& x : stack) x = normal(rng);
  for (float& x : nan_matrix) x = normal(rng);
  nan_matrix[11] = NAN;
  write_npy(src.file("experts.npy"), {4, 24, 16}, stack);
  write_npy(src.file("broken.npy"), {20, 20}, nan_matrix);
  for (auto [shape, count, seed] : {std::tuple{"64x48", 3, 1}, {"12x200", 2, 2}}) {
    const auto r = run_muspec("synth " + src.path().string() + " --spectrum power:0.5 --shape " + shape + " --count " +
                              std::to_string(count) + " --seed " + std::to_string(seed) + " --name s" + std::to_string(seed));
    REQUIRE(r.exit_code == 0);
  }
  check_mpi_equals_one_process(src.path().string(), {3});
  TempDir out("mpiout");
  const auto r = run_command(mpirun(3) + "scan " + src.path().string() + " -o " + out.file("s.h5") + " -q");
  CHECK(r.exit_code == 1);
  CHECK(r.err.find("broken.npy") != std::string::npos);  // the skip, wherever it was computed
}

TEST_CASE("mpi: a note about the run is printed once, not once per rank", "[mpi][cli]") {
  // Before: `mpirun -n 2 muspec scan ... --resume` without a journal printed "no scan journal"
  // on every rank.
  TempDir dir("mpinote");
  const auto r = run_command(mpirun(2) + "scan " + muspec_test::source_dir() + "/sample_data/numpy -o " + dir.file("s.h5") +
                             " -q --resume");
  INFO(r.err);
  CHECK(r.exit_code == 0);
  std::map<std::string, int> seen;
  std::istringstream lines(r.err);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("muspec: note:", 0) == 0) ++seen[line];
  CHECK(seen.size() >= 1);  // at least the journal note
  for (const auto& [line, n] : seen) {
    INFO(line);
    CHECK(n == 1);
  }
}

TEST_CASE("mpi: an error on rank 0 ends the job (exit 2), names the rank, writes nothing", "[mpi][cli]") {
  if (muspec_test::kSanitized) return;
  TempDir dir("mpierr");
  muspec_test::write_bytes(dir.file("s.h5.journal"), "not a journal\n");  // rank 0 keeps the journal and refuses this one
  const auto r = run_command(mpirun(2) + "scan " + muspec_test::source_dir() + "/sample_data/numpy -o " + dir.file("s.h5") + " -q");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("MPI rank 0 of 2: " + dir.file("s.h5.journal")) != std::string::npos);
  CHECK(!std::filesystem::exists(dir.file("s.h5")));
  CHECK(files_containing(dir, ".tmp") == 0);
  CHECK(read_text(dir.file("s.h5.journal")) == "not a journal\n");  // left for the user to look at
}

TEST_CASE("mpi: a rank that sees other inputs than rank 0 ends the job (exit 2), writes nothing", "[mpi][cli]") {
  if (muspec_test::kSanitized) return;
  TempDir dir("mpidiff");
  const std::string data = muspec_test::source_dir() + "/sample_data/";
  // Open MPI's MPMD form: rank 0 and rank 1 run different command lines (as ranks on nodes
  // whose shared file systems differ would).
  std::string cmd = mpirun(1) + "scan " + data + "numpy -o " + dir.file("s.h5") + " -q : -n 1 '" + MUSPEC_BINARY + "' scan " + data +
                    "runs/d16 -o " + dir.file("s.h5") + " -q";
  const auto r = run_command(cmd);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("MPI rank 1 selected other matrices than rank 0") != std::string::npos);
  CHECK(!std::filesystem::exists(dir.file("s.h5")));
  CHECK(files_containing(dir, ".tmp") == 0);
}

namespace {

/// The muspec processes mpirun `parent` started, with their MPI ranks (from their environment).
std::map<int, pid_t> ranks_of(pid_t parent) {
  std::map<int, pid_t> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    std::string stat = read_text(e.path().string() + "/stat");  // "pid (comm) state ppid ..."
    const size_t close = stat.rfind(')');
    if (close == std::string::npos || stat.find("(muspec)") == std::string::npos) continue;
    std::istringstream rest(stat.substr(close + 2));
    char state;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid != parent) continue;
    const std::string env = read_text(e.path().string() + "/environ");
    const std::string key = "OMPI_COMM_WORLD_RANK=";
    const size_t at = env.find(key);
    if (at != std::string::npos) out[std::atoi(env.c_str() + at + key.size())] = static_cast<pid_t>(std::stoi(name));
  }
  return out;
}

/// A process that exists and is not a zombie (read_text of a missing file is "").
bool alive(pid_t pid) {
  const std::string stat = read_text("/proc/" + std::to_string(pid) + "/stat");
  return !stat.empty() && stat.find(") Z") == std::string::npos;
}

}  // namespace

TEST_CASE("mpi: scans killed at random moments (a rank or mpirun) resume to the uninterrupted outputs", "[mpi][cli][kill]") {
  TempDir dir("mpikill");
  // A real training run's checkpoints and numpy files: many small matrices, so kills land mid-scan.
  const std::string inputs = muspec_test::source_dir() + "/sample_data/runs/d16 " + muspec_test::source_dir() + "/sample_data/numpy";
  const std::string args = " -q --threads 1 --summary ";
  REQUIRE(run_muspec("scan " + inputs + " -o " + dir.file("ref.h5") + args + dir.file("ref.csv")).exit_code == 0);
  const auto t0 = std::chrono::steady_clock::now();
  REQUIRE(run_command(mpirun(2) + "scan " + inputs + " -o " + dir.file("m.h5") + args + dir.file("m.csv")).exit_code == 0);
  const double full_us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
  const int trials = muspec_test::kSanitized ? 3 : 10;
  std::mt19937 rng(4321);
  int killed_a_rank = 0, killed_mpirun = 0;
  for (int trial = 0; trial < trials; ++trial) {
    TempDir run("mpikillrun");
    const std::string out = run.file("s.h5"), csv = run.file("s.csv");
    const int ranks = 2 + trial % 2;
    const std::string cmd = "exec env " + mpirun(ranks) + "scan " + inputs + " -o " + out + args + csv;
    const char* argv[] = {"/bin/sh", "-c", cmd.c_str(), nullptr};
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);  // its own process group, to clean up after it
    posix_spawnattr_setpgroup(&attr, 0);
    pid_t pid;
    REQUIRE(posix_spawn(&pid, "/bin/sh", nullptr, &attr, const_cast<char**>(argv), environ) == 0);
    posix_spawnattr_destroy(&attr);
    // Kill somewhere in the middle 90 % of a run (mpirun's start-up is the first part).
    const auto delay = std::chrono::microseconds(static_cast<int64_t>(full_us * (0.1 + 0.9 * (rng() % 1000) / 1000.0)));
    std::this_thread::sleep_for(delay);
    std::map<int, pid_t> seen = ranks_of(pid);
    const int victim = trial % 3 == 2 ? -1 : static_cast<int>(rng() % static_cast<unsigned>(ranks));  // -1: mpirun
    for (int k = 0; k < 250 && victim >= 0 && !seen.count(victim) && alive(pid); ++k) {  // a slow start (ASan): wait for the rank
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      seen = ranks_of(pid);
    }
    if (victim >= 0 && seen.count(victim)) {
      ::kill(seen[victim], SIGKILL);
      ++killed_a_rank;
    } else {
      ::kill(pid, SIGKILL);
      ++killed_mpirun;
    }
    // mpirun ends the job when a rank dies; give it 60 s, then end what is left of the group.
    int status = 0;
    for (int waited = 0; waited < 600 && ::waitpid(pid, &status, WNOHANG) == 0; ++waited)
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    const bool ended = ::waitpid(pid, &status, WNOHANG) == -1 || WIFEXITED(status) || WIFSIGNALED(status);
    ::kill(-pid, SIGKILL);  // the group this test started (mpirun and its ranks)
    if (!ended) ::waitpid(pid, &status, 0);
    for (auto [rank, p] : seen) {  // orphaned ranks of a killed mpirun: wait until they are gone
      ::kill(p, SIGKILL);
      for (int k = 0; k < 100 && alive(p); ++k) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    INFO("trial " << trial << ": " << ranks << " ranks, killed " << (victim >= 0 && seen.count(victim) ? "rank " + std::to_string(victim) : "mpirun")
                  << " after " << delay.count() << " us");
    CHECK(ended);  // the job did not hang on a dead rank
    // The final paths hold nothing or the whole outputs (a kill after the commit), never a part.
    if (std::filesystem::exists(out)) require_same_store(dir.file("ref.h5"), out);
    // Resume on another layout: the journal is rank 0's, the same as a one-process scan's.
    const int again = trial % 2 == 0 ? 1 : 2 + static_cast<int>(rng() % 2);  // one process is quicker: every other trial
    const std::string resume = "scan " + inputs + " -o " + out + args + csv + " --resume";
    const auto r = again == 1 ? run_muspec(resume) : run_command(mpirun(again) + resume);
    INFO("resumed on " << again << " ranks: " << r.err);
    REQUIRE(r.exit_code == 0);
    require_same_store(dir.file("ref.h5"), out);
    CHECK(read_text(csv) == read_text(dir.file("ref.csv")));
    CHECK(files_containing(run, "journal") == 0);
    CHECK(files_containing(run, ".tmp") == 0);
  }
  CHECK(killed_a_rank >= trials / 3);
  CHECK(killed_mpirun >= 1);
}

#else

TEST_CASE("mpi: a build without MPI refuses an MPI launch and writes nothing", "[mpi][cli]") {
  TempDir dir("nompi");
  const auto r = run_command("OMPI_COMM_WORLD_SIZE=2 '" + std::string(MUSPEC_BINARY) + "' scan " + muspec_test::source_dir() +
                             "/sample_data/numpy -o " + dir.file("s.h5") + " -q");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("built without MPI") != std::string::npos);
  CHECK(files_containing(dir, "s.h5") == 0);
}

#endif
