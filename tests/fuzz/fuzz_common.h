// Helpers shared by the libFuzzer targets: findings, debug notes, scratch files, and the
// checks run on every tensor a reader hands out. Header-only; each target includes it once.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <unordered_set>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "io/pickle.h"
#include "io/tensor_source.h"
#include "io/torch_file.h"

namespace muspec_fuzz {

using namespace muspec;

[[noreturn]] inline void finding(const std::string& what) {
  std::fprintf(stderr, "FUZZ FINDING: %s\n", what.c_str());
  std::abort();
}

/// MUSPEC_FUZZ_DEBUG=1 prints every expected error and loaded tensor (why a seed is rejected).
inline void note(const std::string& what) {
  static const bool on = std::getenv("MUSPEC_FUZZ_DEBUG") != nullptr;
  if (on) std::fprintf(stderr, "muspec-fuzz: %s\n", what.c_str());
}

/// A per-process scratch file with the given suffix, in /dev/shm when present; removed at exit.
inline const std::string& temp_path(const std::string& suffix) {
  static std::map<std::string, std::string> paths;
  auto it = paths.find(suffix);
  if (it != paths.end()) return it->second;
  const char* dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  const std::string p = std::string(dir) + "/muspec-fuzz-" + std::to_string(getpid()) + "-in" + suffix;
  if (paths.empty()) std::atexit([] { for (const auto& [s, q] : paths) std::remove(q.c_str()); });
  return paths.emplace(suffix, p).first->second;
}

inline void write_file(const std::string& path, const void* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || (size && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0)
    finding("harness cannot write " + path);
}

inline volatile uint64_t g_sink;

/// Checks the view's contract, reads every byte it may touch and converts up to four 2-D
/// slices of decodable float tensors (at most 2^20 elements each) to dense float64.
inline void touch_view(const TensorView& v, const TensorEntry& e) {
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
inline void touch_source(const TensorSource& src) {
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

/// Visits every value once; a value that is its own ancestor is a cycle (the reader promises none).
inline uint64_t walk(const pickle::ValuePtr& v, std::unordered_set<const pickle::Value*>& done,
              std::unordered_set<const pickle::Value*>& path) {
  if (!v) return 0;
  if (path.count(v.get())) finding("cycle in the pickle value graph");
  if (!done.insert(v.get()).second) return 0;
  path.insert(v.get());
  uint64_t n = v->text.size() + v->qualified_name().size() + static_cast<uint64_t>(v->depth);
  if (v->is(pickle::Kind::Dict)) n += v->get("state_dict") != nullptr;
  if (const TorchTensorRef* t = as_tensor(*v)) n += t->shape.size() + t->storage_key.size();
  for (const auto& x : v->items) n += walk(x, done, path);
  n += walk(v->args, done, path) + walk(v->state, done, path);
  path.erase(v.get());
  return n;
}

inline uint64_t walk(const pickle::ValuePtr& v) {
  std::unordered_set<const pickle::Value*> done, path;
  return walk(v, done, path);
}

}  // namespace muspec_fuzz
