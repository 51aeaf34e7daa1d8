// libFuzzer target: the restricted pickle reader, on the bytes in memory (no reduce hook, default
// and tight ParseLimits) and with the torch reduce hook, by wrapping the input as data.pkl of a
// torch.save zip archive (with a few fixed storage records) that TorchFile::open reads; every
// tensor is then loaded and converted. Expected failures are muspec::Error and
// pickle::PickleError; anything else (crash, sanitizer report, other exception, hang, broken
// invariant) is a finding. Build and run: tests/fuzz/README.md.
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "io/pickle.h"
#include "io/tensor_source.h"
#include "io/torch_file.h"
#include "fuzz_common.h"

namespace {

using namespace muspec;

using namespace muspec_fuzz;  // finding, note, temp_path, write_file, touch_*: fuzz_common.h


// ---- a minimal stored-only ZIP writer, for the torch.save wrapper ----

void put16(std::string& s, uint32_t v) { s.push_back(char(v & 0xff)); s.push_back(char((v >> 8) & 0xff)); }
void put32(std::string& s, uint32_t v) { put16(s, v & 0xffff); put16(s, v >> 16); }

std::string make_zip(const std::vector<std::pair<std::string, std::string>>& members) {
  std::string out, cd;
  for (const auto& [name, bytes] : members) {
    const uint32_t crc = static_cast<uint32_t>(
        crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(bytes.data()), static_cast<uInt>(bytes.size())));
    const uint32_t offset = static_cast<uint32_t>(out.size());
    put32(out, 0x04034b50); put16(out, 20); put16(out, 0); put16(out, 0); put16(out, 0); put16(out, 0);
    put32(out, crc); put32(out, static_cast<uint32_t>(bytes.size())); put32(out, static_cast<uint32_t>(bytes.size()));
    put16(out, static_cast<uint32_t>(name.size())); put16(out, 0);
    out += name;
    out += bytes;
    put32(cd, 0x02014b50); put16(cd, 20); put16(cd, 20); put16(cd, 0); put16(cd, 0); put16(cd, 0); put16(cd, 0);
    put32(cd, crc); put32(cd, static_cast<uint32_t>(bytes.size())); put32(cd, static_cast<uint32_t>(bytes.size()));
    put16(cd, static_cast<uint32_t>(name.size())); put16(cd, 0); put16(cd, 0); put16(cd, 0); put16(cd, 0);
    put32(cd, 0); put32(cd, offset);
    cd += name;
  }
  const uint32_t cd_offset = static_cast<uint32_t>(out.size());
  out += cd;
  put32(out, 0x06054b50); put16(out, 0); put16(out, 0);
  put16(out, static_cast<uint32_t>(members.size())); put16(out, static_cast<uint32_t>(members.size()));
  put32(out, static_cast<uint32_t>(cd.size())); put32(out, cd_offset); put16(out, 0);
  return out;
}

/// Storage records "archive/data/0".."archive/data/15", 1 KiB each of mixed float bit
/// patterns (random bytes with some 0x00 and 0xff: zeros, NaN, Inf, subnormals), for the
/// persistent ids of the pickle (torch numbers its storages from 0).
const std::vector<std::pair<std::string, std::string>>& storages() {
  static const auto records = [] {
    std::vector<std::pair<std::string, std::string>> r;
    uint32_t x = 0x12345678;
    for (int k = 0; k < 16; ++k) {
      std::string bytes(1024, '\0');
      for (size_t i = 0; i < bytes.size(); ++i) {
        x = x * 1664525u + 1013904223u;
        bytes[i] = static_cast<char>(i % 61 == 7 ? 0xff : i % 53 == 3 ? 0x00 : (x >> 24));
      }
      r.emplace_back("archive/data/" + std::to_string(k), std::move(bytes));
    }
    return r;
  }();
  return records;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // 1. Plain parse, no hook, default limits, then tight limits (exercises every cap).
  for (int pass = 0; pass < 2; ++pass) {
    pickle::ParseLimits limits;
    if (pass == 1) {
      limits.max_memo = 8;
      limits.max_depth = 6;
      limits.max_values = 64;
    }
    try {
      uint64_t consumed = 0;
      const pickle::ValuePtr v = pickle::parse(data, size, nullptr, &consumed, limits);
      if (!v) finding("parse returned null");
      if (consumed == 0 || consumed > size) finding("consumed " + std::to_string(consumed) + " of " + std::to_string(size) + " bytes");
      g_sink = walk(v);
    } catch (const pickle::PickleError& e) {
      note(e.what());
      if (e.offset() > size) finding("PickleError offset " + std::to_string(e.offset()) + " past the input (" + std::to_string(size) + " bytes)");
    } catch (const Error& e) {
      note(e.what());
    }
  }
  // 2. With the torch reduce hook: the input becomes archive/data.pkl of a torch.save zip.
  std::vector<std::pair<std::string, std::string>> members;
  members.emplace_back("archive/data.pkl", std::string(reinterpret_cast<const char*>(data), size));
  members.emplace_back("archive/byteorder", size % 2 ? "big" : "little");
  for (const auto& s : storages()) members.push_back(s);
  const std::string zip = make_zip(members);
  const std::string& path = temp_path(".pt");
  write_file(path, zip.data(), zip.size());
  try {
    const auto f = TorchFile::open(path);
    g_sink = walk(f->root());
    touch_source(*f);
  } catch (const Error& e) {
    note(e.what());
  } catch (const pickle::PickleError& e) {
    note(e.what());
  }
  return 0;
}
