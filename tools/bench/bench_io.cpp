// Reader scale benchmark (issue 14, item 7): the time to open a safetensors file whose header
// lists N tensors, and to open a ZIP archive of N members and look every member up by name
// (what the torch.save reader does once per storage record). Both must grow linearly in N;
// a timed unit test would be flaky on a loaded machine, so the figures live here and in
// docs/reliability.md.
//
//   muspec_bench_io [--only=safetensors|zip] [N...]        (default: 10000 100000)
//
// Prints one JSON line per measurement: {"what", "entries", "ms"}.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <unistd.h>

#include "io/safetensors.h"
#include "io/tensor_source.h"
#include "io/zip.h"

namespace fs = std::filesystem;

namespace {

double time_ms(const std::function<void()>& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

void put(std::string* s, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) s->push_back(static_cast<char>(v >> (8 * i)));
}

std::string member_name(uint64_t i) { return "archive/data/" + std::to_string(i); }

/// A safetensors file of n 1x1 F32 tensors, written byte by byte (muspec's writer would also
/// work, but this keeps the benchmark independent of the code under test).
void write_wide_safetensors(const std::string& path, uint64_t n) {
  std::string header = "{";
  for (uint64_t i = 0; i < n; ++i) {
    header += (i ? ",\"" : "\"") + std::string("model.layers.") + std::to_string(i) + ".weight\":{\"dtype\":\"F32\","
              "\"shape\":[1,1],\"data_offsets\":[" + std::to_string(4 * i) + "," + std::to_string(4 * i + 4) + "]}";
  }
  header += "}";
  std::string bytes;
  put(&bytes, header.size(), 8);
  bytes += header;
  bytes.append(4 * n, '\0');
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// A ZIP64 archive of n stored 1-byte members (ZIP64 because n may exceed 65535 entries).
/// CRCs are zero: the benchmark never reads member bytes, and ZipArchive checks CRCs on read.
void write_wide_zip(const std::string& path, uint64_t n) {
  std::string body, central;
  for (uint64_t i = 0; i < n; ++i) {
    const std::string name = member_name(i);
    const uint64_t offset = body.size();
    put(&body, 0x04034b50, 4), put(&body, 20, 2), put(&body, 0, 2), put(&body, 0, 2), put(&body, 0, 4);
    put(&body, 0, 4), put(&body, 1, 4), put(&body, 1, 4), put(&body, name.size(), 2), put(&body, 0, 2);
    body += name + "x";
    put(&central, 0x02014b50, 4), put(&central, 45, 2), put(&central, 45, 2), put(&central, 0, 2);
    put(&central, 0, 2), put(&central, 0, 4), put(&central, 0, 4), put(&central, 1, 4), put(&central, 1, 4);
    put(&central, name.size(), 2), put(&central, 0, 2), put(&central, 0, 2), put(&central, 0, 2);
    put(&central, 0, 2), put(&central, 0, 4), put(&central, offset, 4);
    central += name;
  }
  std::string tail;
  const uint64_t cd_offset = body.size(), eocd64 = body.size() + central.size();
  put(&tail, 0x06064b50, 4), put(&tail, 44, 8), put(&tail, 45, 2), put(&tail, 45, 2), put(&tail, 0, 4);
  put(&tail, 0, 4), put(&tail, n, 8), put(&tail, n, 8), put(&tail, central.size(), 8), put(&tail, cd_offset, 8);
  put(&tail, 0x07064b50, 4), put(&tail, 0, 4), put(&tail, eocd64, 8), put(&tail, 1, 4);
  put(&tail, 0x06054b50, 4), put(&tail, 0, 2), put(&tail, 0, 2), put(&tail, 0xFFFF, 2), put(&tail, 0xFFFF, 2);
  put(&tail, 0xFFFFFFFF, 4), put(&tail, 0xFFFFFFFF, 4), put(&tail, 0, 2);
  const std::string bytes = body + central + tail;
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

void report(const char* what, uint64_t n, double ms) {
  std::cout << nlohmann::json{{"what", what}, {"entries", n}, {"ms", ms}}.dump() << std::endl;
}

void bench_safetensors(const fs::path& dir, uint64_t n) {
  const std::string st = (dir / "wide.safetensors").string();
  write_wide_safetensors(st, n);
  size_t seen = 0;
  report("safetensors_open", n, time_ms([&] { seen = muspec::open_safetensors(st)->entries().size(); }));
  if (seen != n) std::cerr << "bench_io: expected " << n << " tensors, read " << seen << "\n", std::exit(1);
}

void bench_zip(const fs::path& dir, uint64_t n) {
  const std::string zip = (dir / "wide.zip").string();
  write_wide_zip(zip, n);
  std::unique_ptr<muspec::ZipArchive> archive;
  report("zip_open", n, time_ms([&] { archive = std::make_unique<muspec::ZipArchive>(zip); }));
  size_t found = 0;
  report("zip_find_every_member", n, time_ms([&] {
           for (uint64_t i = 0; i < n; ++i) found += archive->find(member_name(i)) != nullptr;
         }));
  if (found != n) std::cerr << "bench_io: found " << found << " of " << n << " members\n", std::exit(1);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<uint64_t> sizes;
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--only=", 0) == 0) only = arg.substr(7);
    else sizes.push_back(std::strtoull(argv[i], nullptr, 10));
  }
  if (sizes.empty()) sizes = {10000, 100000};
  const fs::path dir = fs::temp_directory_path() / ("muspec-bench-io-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  for (uint64_t n : sizes) {
    if (only.empty() || only == "safetensors") bench_safetensors(dir, n);
    if (only.empty() || only == "zip") bench_zip(dir, n);
  }
  fs::remove_all(dir);
  return 0;
}
