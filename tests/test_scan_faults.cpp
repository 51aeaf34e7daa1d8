// Issue 14: a file truncated (or rewritten) while a scan reads it. Before, the mapped read past
// the new end of file raised SIGBUS and killed the process (exit 135, all work lost); now the
// fault reads zeros, is counted (io/bus_guard.h), and the scan skips what it read from the
// changed file (analysis/scan/file_watch.h).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "scan/file_watch.h"
#include "io/bus_guard.h"
#include "io/mapped_file.h"
#include "io/safetensors.h"
#include "io/tensor_source.h"
#include "test_support.h"

using muspec::DType;
using muspec_test::TempDir;
namespace fs = std::filesystem;

namespace {

std::string f32_matrix_bytes(int64_t n, float seed) {
  std::vector<float> v(static_cast<size_t>(n * n));
  for (size_t i = 0; i < v.size(); ++i) v[i] = seed + static_cast<float>((i * 2654435761u) % 1000) / 1000.0f;
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(float));
}

}  // namespace

TEST_CASE("bus guard: a mapping read past the end of a truncated file reads zeros, counted", "[io][faults]") {
  TempDir dir("bus");
  const std::string path = dir.file("f.bin");
  muspec_test::write_bytes(path, std::string(3 * 4096 + 100, 'x'));
  const muspec::MappedFile f(path);
  REQUIRE(f.data()[0] == 'x');
  REQUIRE(::truncate(path.c_str(), 10) == 0);
  const uint64_t before = muspec::bus_faults_on_this_thread();
  volatile uint8_t second_page = f.data()[4096 + 5];  // SIGBUS without the guard
  volatile uint8_t last = f.data()[f.size() - 1];
  CHECK(second_page == 0);
  CHECK(last == 0);
  CHECK(muspec::bus_faults_on_this_thread() == before + 1);  // one fault zero-fills the rest of the mapping
  CHECK(f.faults() == 1);
  CHECK(f.data()[0] == 'x');  // the bytes before the new end are still the file's
}

TEST_CASE("bus guard: a tensor loaded from a truncated safetensors file decodes without a crash", "[io][faults]") {
  TempDir dir("bus");
  const std::string path = dir.file("m.safetensors");
  muspec::write_safetensors(path, {{"a", DType::F32, {128, 128}, f32_matrix_bytes(128, 1)},
                                   {"b", DType::F32, {128, 128}, f32_matrix_bytes(128, 2)}}, {});
  auto src = muspec::open_tensor_file(path);
  REQUIRE(::truncate(path.c_str(), 200) == 0);
  const uint64_t before = muspec::bus_faults_on_this_thread();
  muspec::TensorHandle h = src->load(1);
  std::vector<double> x(128 * 128);
  const muspec::DenseConversion c = muspec::to_dense_row_major(muspec::matrix_of(h.view), muspec::InputTransform::None, x.data());
  CHECK(c.frobenius == 0.0);
  CHECK(muspec::bus_faults_on_this_thread() > before);
}

TEST_CASE("file watch: size, modification time, replacement and removal are changes", "[io][faults]") {
  TempDir dir("watch");
  const std::string a = dir.file("a"), b = dir.file("b");
  muspec_test::write_bytes(a, "12345");
  muspec_test::write_bytes(b, "12345");
  muspec::FileWatch w;
  w.remember(a);
  w.remember(b);
  CHECK(w.change(a).empty());
  CHECK(w.change(dir.file("never-remembered")).empty());
  REQUIRE(::truncate(a.c_str(), 2) == 0);
  CHECK(w.change(a).find("size 5 -> 2 bytes") != std::string::npos);
  const struct timespec times[2] = {{0, UTIME_OMIT}, {12345, 0}};
  REQUIRE(::utimensat(AT_FDCWD, b.c_str(), times, 0) == 0);
  CHECK(w.change(b).find("modified") != std::string::npos);
  fs::remove(b);
  CHECK(w.change(b).find("removed") != std::string::npos);
  // Replaced by rename while the old file still exists (so its inode cannot be reused).
  const std::string d = dir.file("d");
  muspec_test::write_bytes(d, "12345");
  w.remember(d);
  muspec_test::write_bytes(dir.file("e"), "12345");
  fs::rename(dir.file("e"), d);
  CHECK(w.change(d).find("replaced") != std::string::npos);
}

namespace {

/// Eighty 384x384 float32 matrices in one safetensors file; returns half its size.
uint64_t write_eighty_matrices(const std::string& path) {
  std::vector<muspec::SafetensorsTensor> tensors;
  for (int i = 0; i < 80; ++i)
    tensors.push_back({"layers." + std::to_string(i) + ".weight", DType::F32, {384, 384}, f32_matrix_bytes(384, float(i))});
  muspec::write_safetensors(path, tensors, {});
  return fs::file_size(path) / 2;
}

/// Runs `muspec ARGS` in the background and truncates `path` to `size` once the process has
/// mapped the file (it shows in /proc/PID/maps) and then spent 0.2 s of CPU time (utime, field 14
/// of /proc/PID/stat, in 1/100 s): a few matrices are done before the cut and most after it,
/// whatever the load (each command below takes ~1 s of CPU or more on one thread in the Release
/// build). The sanitizer builds skip these two tests: there start-up and per-matrix costs move the
/// cut before the first matrix or after the last (the bus-guard tests above run there).
muspec_test::RunResult run_and_truncate(const TempDir& dir, const std::string& args, const std::string& path, uint64_t size) {
  const std::string script = dir.file("run.sh");
  muspec_test::write_bytes(script, "'" + std::string(MUSPEC_BINARY) + "' " + args + " & pid=$!\n" +
                                       "for i in $(seq 2000); do grep -q '" + fs::path(path).filename().string() +
                                       "' /proc/$pid/maps 2>/dev/null && break; sleep 0.005; done\n"
                                       "t0=$(cut -d' ' -f14 /proc/$pid/stat 2>/dev/null || echo 0)\n"
                                       "for i in $(seq 12000); do t=$(cut -d' ' -f14 /proc/$pid/stat 2>/dev/null) || break; "
                                       "[ $((t - t0)) -ge 20 ] && break; sleep 0.005; done\n"
                                       "truncate -s " + std::to_string(size) + " '" + path + "'\nwait $pid\necho rc=$?\n");
  return muspec_test::run_command("bash '" + script + "'");
}

}  // namespace

TEST_CASE("cli: a checkpoint truncated during the scan is reported, not a crash", "[cli][faults]") {
  if (muspec_test::kSanitized) return;  // see run_and_truncate
  TempDir dir("trunc");
  const std::string path = dir.file("ckpt.safetensors");
  const uint64_t half = write_eighty_matrices(path);
  const auto r = run_and_truncate(dir, "scan '" + path + "' --threads 1 --method svd -q -o '" + dir.file("s.h5") + "'", path, half);
  INFO(r.out << r.err);
  CHECK(r.out.find("rc=1") != std::string::npos);  // before: rc=135 (SIGBUS)
  CHECK(r.err.find("changed during the scan") != std::string::npos);
  CHECK(fs::exists(dir.file("s.h5")));  // the tensors analysed before the cut are kept
}

TEST_CASE("cli: ns simulate skips the matrices of a checkpoint truncated while it runs", "[cli][faults][ns]") {
  if (muspec_test::kSanitized) return;  // see run_and_truncate
  TempDir dir("trunc-ns");
  const std::string path = dir.file("ckpt.safetensors"), out = dir.file("sim.csv");
  const uint64_t half = write_eighty_matrices(path);
  const auto r = run_and_truncate(dir, "ns simulate '" + path + "' --schedule keller -q -o '" + out + "'", path, half);
  INFO(r.out << r.err);
  CHECK(r.out.find("rc=1") != std::string::npos);
  CHECK(r.err.find("changed during the scan") != std::string::npos);
  // The rows written are matrices read before the cut: fewer than 80, at least one.
  const std::string csv = muspec_test::read_text(out);
  const auto rows = std::count(csv.begin(), csv.end(), '\n') - 1;
  CHECK(rows >= 1);
  CHECK(rows < 80);
}
