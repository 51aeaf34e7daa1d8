#include "scan/file_watch.h"

#include <sys/stat.h>

namespace muspec {

FileWatch::Stamp FileWatch::stamp_of(const std::string& path) {
  Stamp s;
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return s;
  s.exists = true;
  s.size = static_cast<int64_t>(st.st_size);
  s.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  s.dev = st.st_dev;
  s.ino = st.st_ino;
  return s;
}

void FileWatch::remember(const std::string& path) {
  if (stamps_.count(path) == 0) stamps_.emplace(path, stamp_of(path));
}

std::string FileWatch::change(const std::string& path) const {
  const auto it = stamps_.find(path);
  if (it == stamps_.end() || !it->second.exists) return "";
  const Stamp& was = it->second;
  const Stamp now = stamp_of(path);
  const std::string prefix = "the file changed during the scan: ";
  const std::string suffix = "; not analysed";
  if (!now.exists) return prefix + "it was removed" + suffix;
  if (now.dev != was.dev || now.ino != was.ino) return prefix + "it was replaced by another file" + suffix;
  if (now.size != was.size)
    return prefix + "size " + std::to_string(was.size) + " -> " + std::to_string(now.size) + " bytes" + suffix;
  if (now.mtime_ns != was.mtime_ns) return prefix + "it was modified (same size, new modification time)" + suffix;
  return "";
}

}  // namespace muspec
