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
#include "fuzz_common.h"

namespace {

using namespace muspec;

using namespace muspec_fuzz;  // finding, note, temp_path, write_file, touch_*: fuzz_common.h

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
