// Progress of a long scan: a bar on a terminal, plain lines in logs, nothing when quiet.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

namespace muspec {

class Progress {
 public:
  enum class Style { Bar, Lines, Quiet };
  /// Bar when `stream` is a terminal, Lines otherwise (Quiet if `quiet`).
  static Style style_for(std::FILE* stream, bool quiet);

  Progress(Style style, std::FILE* stream);
  ~Progress();
  void start(int64_t total_items, uint64_t total_bytes);
  /// One item finished; thread-safe.
  void advance(uint64_t bytes, const std::string& label);
  void finish();

 private:
  void draw(bool final_line);
  Style style_;
  std::FILE* out_;
  std::mutex mu_;
  int64_t total_items_ = 0, done_items_ = 0;
  uint64_t total_bytes_ = 0, done_bytes_ = 0;
  std::chrono::steady_clock::time_point start_, last_draw_;
  std::string label_;
  bool finished_ = true;
};

/// "1.5 GiB", "12 KiB".
std::string human_bytes(uint64_t bytes);
/// "3m05s", "42s".
std::string human_duration(double seconds);

}  // namespace muspec
