// Shared helpers for the test suite: temporary directories, running the muspec binary,
// fixture paths. Header-only; every test file may include it.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

namespace muspec_test {

namespace fs = std::filesystem;

/// A fresh directory under the build tree's tests/tmp, removed when the object dies.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "t") {
    const char* root = std::getenv("MUSPEC_TEST_TMP");
    fs::path base = root ? fs::path(root) : fs::temp_directory_path() / "muspec-tests";
    std::random_device rd;
    path_ = base / (tag + "-" + std::to_string(rd()) + std::to_string(rd()));
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

inline std::string source_dir() { return MUSPEC_SOURCE_DIR; }
inline std::string fixture(const std::string& name) { return source_dir() + "/tests/fixtures/" + name; }

inline std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

struct RunResult {
  int exit_code = -1;
  std::string out;  ///< stdout
  std::string err;  ///< stderr
};

/// Runs a shell command line, capturing stdout and stderr separately.
inline RunResult run_command(const std::string& cmdline) {
  TempDir scratch("run");
  const std::string out = scratch.file("stdout"), err = scratch.file("stderr");
  const std::string full = cmdline + " >" + out + " 2>" + err;
  const int status = std::system(full.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_text(out);
  r.err = read_text(err);
  return r;
}

/// Runs the muspec binary built with this test suite, with `args` appended verbatim.
inline RunResult run_muspec(const std::string& args) {
  return run_command(std::string("'") + MUSPEC_BINARY + "' " + args);
}

/// True in the AddressSanitizer build, which runs the same suite: slow end-to-end cases shrink there.
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kSanitized = true;
#else
inline constexpr bool kSanitized = false;
#endif
#else
inline constexpr bool kSanitized = false;
#endif

/// Path of a Python interpreter that has numpy, or empty when none was found at configure time.
inline std::string python_with_numpy() { return MUSPEC_PYTHON; }

}  // namespace muspec_test
