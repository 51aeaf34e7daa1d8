#include "report/progress.h"

#include <unistd.h>

#include <cmath>

namespace muspec {

Progress::Style Progress::style_for(std::FILE* stream, bool quiet) {
  if (quiet) return Style::Quiet;
  return isatty(fileno(stream)) ? Style::Bar : Style::Lines;
}

Progress::Progress(Style style, std::FILE* stream) : style_(style), out_(stream) {}

Progress::~Progress() { finish(); }

void Progress::start(int64_t total_items, uint64_t total_bytes) {
  std::lock_guard<std::mutex> lock(mu_);
  total_items_ = total_items;
  total_bytes_ = total_bytes;
  done_items_ = 0;
  done_bytes_ = 0;
  start_ = last_draw_ = std::chrono::steady_clock::now();
  finished_ = false;
  if (style_ == Style::Lines)
    std::fprintf(out_, "scanning %lld matrices (%s)\n", static_cast<long long>(total_items),
                 human_bytes(total_bytes).c_str());
}

void Progress::advance(uint64_t bytes, const std::string& label) {
  std::lock_guard<std::mutex> lock(mu_);
  ++done_items_;
  done_bytes_ += bytes;
  label_ = label;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  // A terminal bar redraws at most 10 times a second; log lines at most every 5 seconds.
  const double period = style_ == Style::Bar ? 0.1 : 5.0;
  if (since >= period || done_items_ == total_items_) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish() {
  std::lock_guard<std::mutex> lock(mu_);
  if (finished_) return;
  finished_ = true;
  if (style_ == Style::Bar) std::fprintf(out_, "\n");
  std::fflush(out_);
}

void Progress::draw(bool) {
  if (style_ == Style::Quiet) return;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  // ETA from bytes when known (cost grows with size), else from items.
  const double frac = total_bytes_ > 0 ? static_cast<double>(done_bytes_) / static_cast<double>(total_bytes_)
                                       : (total_items_ > 0 ? static_cast<double>(done_items_) / static_cast<double>(total_items_) : 1.0);
  const std::string eta = frac > 0 && frac < 1 ? human_duration(elapsed * (1 - frac) / frac) : "0s";
  if (style_ == Style::Bar) {
    const int width = 28;
    const int filled = static_cast<int>(std::lround(frac * width));
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(width, '.');
    std::string label = label_.size() > 40 ? "…" + label_.substr(label_.size() - 39) : label_;
    std::fprintf(out_, "\r\033[K[%s] %lld/%lld  %s/%s  ETA %s  %s", bar.c_str(),
                 static_cast<long long>(done_items_), static_cast<long long>(total_items_),
                 human_bytes(done_bytes_).c_str(), human_bytes(total_bytes_).c_str(), eta.c_str(),
                 label.c_str());
  } else {
    std::fprintf(out_, "scanned %lld/%lld matrices, %s/%s, elapsed %s, ETA %s\n",
                 static_cast<long long>(done_items_), static_cast<long long>(total_items_),
                 human_bytes(done_bytes_).c_str(), human_bytes(total_bytes_).c_str(),
                 human_duration(elapsed).c_str(), eta.c_str());
  }
  std::fflush(out_);
}

std::string human_bytes(uint64_t bytes) {
  static const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 4) v /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

std::string human_duration(double s) {
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%.0fs", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  else std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s) / 3600, (static_cast<int>(s) % 3600) / 60);
  return buf;
}

}  // namespace muspec
