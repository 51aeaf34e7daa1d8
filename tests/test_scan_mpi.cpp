// `mpirun -n N muspec scan` (analysis/scan/mpi_scan.h): the store, CSV and JSON that rank 0
// writes for 1, 2 and 3 ranks hold the records of the one-process scan, bit for bit, in its order.
// The MPI cases run only in builds with MPI (MUSPEC_MPIEXEC); a build without MPI is checked to
// refuse an MPI launch instead of letting every rank write the outputs.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <random>

#include "test_support.h"

using muspec_test::read_text;
using muspec_test::run_command;
using muspec_test::run_muspec;
using muspec_test::TempDir;

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
                            dir.file("one.json") + " -q --threads 2");
  INFO(w.err);
  REQUIRE(w.exit_code <= 1);
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

TEST_CASE("mpi: an error on one rank ends the job (exit 2), names the rank, writes nothing", "[mpi][cli]") {
  if (muspec_test::kSanitized) return;
  TempDir dir("mpierr");
  muspec_test::write_bytes(dir.file("s.h5.journal.rank1of2"), "not a journal\n");  // rank 1 refuses it
  const auto r = run_command(mpirun(2) + "scan " + muspec_test::source_dir() + "/sample_data/numpy -o " + dir.file("s.h5") + " -q");
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("MPI rank 1 of 2: " + dir.file("s.h5.journal.rank1of2")) != std::string::npos);
  CHECK(!std::filesystem::exists(dir.file("s.h5")));
  CHECK(files_containing(dir, ".tmp") == 0);
  CHECK(read_text(dir.file("s.h5.journal.rank1of2")) == "not a journal\n");  // left for the user to look at
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
