// libFuzzer target: safetensors files. The input is read three ways: as a .safetensors file
// (SafetensorsFile: every tensor loaded and converted, metadata and find() checked), through
// open_tensor_file() under a name that says nothing (content sniffing, so .npy/.npz/safetensors
// readers), and as a sharded *.safetensors.index.json next to two valid shards. Expected
// failures are muspec::Error; anything else (crash, sanitizer report, other exception, hang,
// broken invariant) is a finding. Build and run: tests/fuzz/README.md.
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "io/pickle.h"
#include "io/safetensors.h"
#include "io/tensor_source.h"

namespace {

using namespace muspec;

// ---- helpers shared by the fuzz targets (kept in each file so each target stands alone) ----

[[noreturn]] void finding(const std::string& what) {
  std::fprintf(stderr, "FUZZ FINDING: %s\n", what.c_str());
  std::abort();
}

/// MUSPEC_FUZZ_DEBUG=1 prints every expected error and loaded tensor (why a seed is rejected).
void note(const std::string& what) {
  static const bool on = std::getenv("MUSPEC_FUZZ_DEBUG") != nullptr;
  if (on) std::fprintf(stderr, "muspec-fuzz: %s\n", what.c_str());
}

/// A per-process scratch file with the given suffix, in /dev/shm when present; removed at exit.
const std::string& temp_path(const std::string& suffix) {
  static std::map<std::string, std::string> paths;
  auto it = paths.find(suffix);
  if (it != paths.end()) return it->second;
  const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  const std::string p = std::string(dir) + "/muspec-fuzz-" + std::to_string(getpid()) + "-in" + suffix;
  if (paths.empty()) std::atexit([] { for (const auto& [s, q] : paths) std::remove(q.c_str()); });
  return paths.emplace(suffix, p).first->second;
}

void write_file(const std::string& path, const void* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || (size && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0)
    finding("harness cannot write " + path);
}

volatile uint64_t g_sink;

/// Checks the view's contract, reads every byte it may touch and converts up to four 2-D
/// slices of decodable float tensors (at most 2^20 elements each) to dense float64.
void touch_view(const TensorView& v, const TensorEntry& e) {
  if (std::string why = v.bounds_problem(); !why.empty())
    finding("reader handed out a view that fails bounds_problem(): " + why + " (tensor '" + e.name + "')");
  if (v.shape != e.shape) finding("loaded shape differs from entries() for '" + e.name + "'");
  if (!e.dtype || *e.dtype != v.dtype) finding("loaded dtype differs from entries() for '" + e.name + "'");
  const uint64_t extent = v.extent_bytes();
  if (extent > v.reachable_bytes) finding("extent_bytes() > reachable_bytes for '" + e.name + "'");
  uint64_t acc = 0;
  for (uint64_t i = 0, n = std::min<uint64_t>(extent, uint64_t{1} << 26); i < n; ++i) acc += v.data[i];
  g_sink = acc;
  if (v.rank() < 2 || !dtype_is_decodable_float(v.dtype)) return;
  const int64_t slices = std::min<int64_t>(matrix_count(v), 4);
  std::vector<double> out;
  for (int64_t k = 0; k < slices; ++k) {
    const MatrixView m = matrix_of(v, k);
    if (m.rows <= 0 || m.cols <= 0 || m.rows > (int64_t{1} << 20) / m.cols) continue;
    out.assign(static_cast<size_t>(m.rows * m.cols), 0.0);
    const DenseConversion c = to_dense_row_major(m, k % 2 ? InputTransform::Sign : InputTransform::None, out.data());
    g_sink = static_cast<uint64_t>(c.nonfinite);
  }
}

/// Loads every entry (an expected error on one does not stop the others) and touches it.
void touch_source(const TensorSource& src) {
  const auto& entries = src.entries();
  for (size_t i = 0; i < entries.size(); ++i) {
    try {
      const TensorHandle h = src.load(i);
      touch_view(h.view, entries[i]);
      note("loaded '" + entries[i].name + "'");
    } catch (const Error& e) {
      note(e.what());
    } catch (const pickle::PickleError& e) {
      note(e.what());
    }
  }
}

/// A per-process folder holding two valid shards, a.safetensors (w1: F32 [2, 2]) and
/// b.safetensors (w2: BF16 [2, 3]), for the index mode; the index is written next to them.
const std::string& index_path() {
  static const std::string path = [] {
    const std::string dir = temp_path(".d");
    std::remove((dir + "/a.safetensors").c_str());
    std::remove((dir + "/b.safetensors").c_str());
    std::remove((dir + "/model.safetensors.index.json").c_str());
    std::remove(dir.c_str());
    if (mkdir(dir.c_str(), 0700) != 0) finding("harness cannot create " + dir);
    std::atexit([] {
      const std::string d = temp_path(".d");
      for (const char* f : {"/a.safetensors", "/b.safetensors", "/model.safetensors.index.json"}) std::remove((d + f).c_str());
      std::remove(d.c_str());
    });
    const float w1[4] = {1.0f, -2.0f, 0.5f, 3.0f};
    write_safetensors(dir + "/a.safetensors", {{"w1", DType::F32, {2, 2}, std::string(reinterpret_cast<const char*>(w1), sizeof w1)}},
                      {{"format", "pt"}});
    write_safetensors(dir + "/b.safetensors", {{"w2", DType::BF16, {2, 3}, std::string("\x80\x3f\x00\x40\x40\x40\x80\x40\xa0\x40\xc0\x40", 12)}}, {});
    return dir + "/model.safetensors.index.json";
  }();
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // 1. As a .safetensors file.
  const std::string& path = temp_path(".safetensors");
  write_file(path, data, size);
  try {
    const SafetensorsFile f(path);
    const auto& entries = f.entries();
    uint64_t total = 0;
    for (size_t i = 0; i < entries.size(); ++i) {
      if (f.find(entries[i].name) != static_cast<long>(i)) finding("find() does not return entry " + std::to_string(i));
      if (!checked_add(total, entries[i].nbytes, &total) || total > size)
        finding("tensors claim more bytes than the file has");
    }
    for (const auto& [k, v] : f.metadata()) g_sink = k.size() + v.size();
    touch_source(f);
  } catch (const Error& e) {
    note(e.what());
  }
  // 2. By content, under a name that says nothing.
  const std::string& anon = temp_path(".weights");
  write_file(anon, data, size);
  try {
    touch_source(*open_tensor_file(anon));
  } catch (const Error& e) {
    note(e.what());
  }
  // 3. As a sharded index next to two valid shards (only inputs that look like JSON).
  if (size > 0 && data[0] == '{') {
    const std::string& index = index_path();
    write_file(index, data, size);
    try {
      touch_source(*open_tensor_file(index));
    } catch (const Error& e) {
      note(e.what());
    }
  }
  return 0;
}
