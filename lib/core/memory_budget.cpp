#include "core/memory_budget.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>

#include "core/error.h"

namespace muspec {

namespace {

constexpr uint64_t kUnlimited = uint64_t{1} << 62;

struct Budget {
  uint64_t bytes = kUnlimited;
  std::string source = "no limit known";
};

std::mutex g_mutex;
bool g_known = false;
Budget g_budget;

/// A number from a one-line file ("max" and unreadable files give nothing).
bool read_number(const char* path, uint64_t* out) {
  std::ifstream f(path);
  std::string word;
  if (!(f >> word) || word.empty() || word.find_first_not_of("0123456789") != std::string::npos) return false;
  *out = std::strtoull(word.c_str(), nullptr, 10);
  return true;
}

bool mem_available(uint64_t* out) {
  std::ifstream f("/proc/meminfo");
  std::string line;
  while (std::getline(f, line)) {
    unsigned long long kib = 0;
    if (std::sscanf(line.c_str(), "MemAvailable: %llu kB", &kib) == 1) {
      *out = static_cast<uint64_t>(kib) * 1024;
      return true;
    }
  }
  return false;
}

/// The cgroup's limit minus what it already uses (v2, else v1; v1's "unlimited" is ~2^63).
bool cgroup_room(uint64_t* out) {
  uint64_t limit = 0, used = 0;
  if (read_number("/sys/fs/cgroup/memory.max", &limit)) {
    read_number("/sys/fs/cgroup/memory.current", &used);
  } else if (read_number("/sys/fs/cgroup/memory/memory.limit_in_bytes", &limit) && limit < kUnlimited) {
    read_number("/sys/fs/cgroup/memory/memory.usage_in_bytes", &used);
  } else {
    return false;
  }
  *out = limit > used ? limit - used : 0;
  return true;
}

Budget detect() {
  Budget b;
  if (const char* env = std::getenv("MUSPEC_MEMORY_BUDGET"); env != nullptr && *env != '\0') {
    b.bytes = parse_byte_size(env, "MUSPEC_MEMORY_BUDGET");
    b.source = "MUSPEC_MEMORY_BUDGET";
    return b;
  }
  uint64_t n = 0;
  if (mem_available(&n)) b = {n, "MemAvailable"};
  if (cgroup_room(&n) && n < b.bytes) b = {n, "the cgroup limit"};
  return b;
}

Budget current() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_known) {
    g_budget = detect();
    g_known = true;
  }
  return g_budget;
}

}  // namespace

uint64_t memory_budget() { return current().bytes; }

std::string memory_budget_source() { return current().source; }

void set_memory_budget(uint64_t bytes, const std::string& source) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_budget = {bytes, source};
  g_known = true;
}

uint64_t parse_byte_size(const std::string& text, const std::string& what) {
  const auto bad = [&] {
    return UsageError(what + ": expected a size in bytes such as 512M, 8G or 1073741824, got '" + text + "'");
  };
  std::istringstream in(text);
  double value = 0;
  if (!(in >> value) || !(value >= 0)) throw bad();
  std::string unit;
  in >> unit;
  if (!in.eof()) throw bad();
  int shift = 0;
  if (unit == "K" || unit == "k" || unit == "KiB") shift = 10;
  else if (unit == "M" || unit == "MiB") shift = 20;
  else if (unit == "G" || unit == "GiB") shift = 30;
  else if (unit == "T" || unit == "TiB") shift = 40;
  else if (!unit.empty() && unit != "B") throw bad();
  const double bytes = std::ldexp(value, shift);
  if (bytes >= std::ldexp(1.0, 62)) return kUnlimited;
  return static_cast<uint64_t>(bytes);
}

std::string byte_size_text(uint64_t bytes) {
  if (bytes < 1024) return std::to_string(bytes) + " B";
  const char* units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double v = static_cast<double>(bytes) / 1024;
  int u = 0;
  while (v >= 1024 && u < 5) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

void admit_allocation(uint64_t bytes, const std::string& file, const std::string& tensor, const std::string& what) {
  const Budget b = current();
  if (bytes <= b.bytes) return;
  throw InputError(file, tensor, "decoding needs " + byte_size_text(bytes) + " (" + what + ") but the memory budget is " +
                                     byte_size_text(b.bytes) + " (" + b.source +
                                     "; set --memory-budget or MUSPEC_MEMORY_BUDGET to change it)");
}

}  // namespace muspec
