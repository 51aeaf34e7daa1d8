#include "core/atomic_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>

#include "core/error.h"

namespace muspec {

namespace {
std::string unique_suffix() {
  std::random_device rd;
  char buf[32];
  std::snprintf(buf, sizeof buf, ".tmp.%d.%08x", static_cast<int>(getpid()), rd());
  return buf;
}
}  // namespace

AtomicOutput::AtomicOutput(std::string final_path)
    : final_(std::move(final_path)), temp_(final_ + unique_suffix()) {
  if (final_.empty()) throw UsageError("empty output path");
}

AtomicOutput::~AtomicOutput() {
  if (!committed_) std::remove(temp_.c_str());
}

void AtomicOutput::commit() {
  if (std::rename(temp_.c_str(), final_.c_str()) != 0)
    throw Error("cannot write '" + final_ + "': " + std::strerror(errno));
  committed_ = true;
}

void write_file_atomically(const std::string& path, const std::string& contents) {
  AtomicOutput out(path);
  {
    std::ofstream f(out.temp_path(), std::ios::binary | std::ios::trunc);
    if (!f) throw Error("cannot create '" + out.temp_path() + "': " + std::strerror(errno));
    f.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    f.flush();
    if (!f) throw Error("cannot write '" + out.temp_path() + "': " + std::strerror(errno));
  }
  out.commit();
}

}  // namespace muspec
