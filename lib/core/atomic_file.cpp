#include "core/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <set>

#include "core/error.h"

namespace muspec {

namespace {

thread_local OutputTransaction* t_transaction = nullptr;

std::string unique_suffix(const char* kind) {
  std::random_device rd;
  char buf[48];
  std::snprintf(buf, sizeof buf, ".%s.%d.%08x", kind, static_cast<int>(getpid()), rd());
  return buf;
}

std::string dir_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string base_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

/// The file a symbolic link at `path` leads to (followed to the end; a dangling link gives the
/// path it names), or `path` itself when it is not a link.
std::string resolve_link(const std::string& path) {
  std::string p = path;
  for (int hops = 0; hops < 40; ++hops) {
    struct stat st;
    if (::lstat(p.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return p;
    char target[PATH_MAX];
    const ssize_t n = ::readlink(p.c_str(), target, sizeof target - 1);
    if (n < 0) return p;
    const std::string t(target, static_cast<size_t>(n));
    p = !t.empty() && t[0] == '/' ? t : dir_of(p) + "/" + t;
  }
  throw Error("cannot write '" + path + "': too many levels of symbolic links");
}

/// Outputs are replaced by renaming a finished file onto them, which would replace a device or
/// a FIFO (`--json /dev/null` run as root once turned /dev/null into a regular file). Anything
/// that exists and is not a regular file is refused before any work is done.
void refuse_non_regular(const std::string& final, const std::string& given) {
  struct stat st;
  if (::stat(final.c_str(), &st) != 0 || S_ISREG(st.st_mode)) return;
  const char* kind = S_ISCHR(st.st_mode)    ? "a character device"
                     : S_ISBLK(st.st_mode)  ? "a block device"
                     : S_ISFIFO(st.st_mode) ? "a FIFO"
                     : S_ISDIR(st.st_mode)  ? "a directory"
                     : S_ISSOCK(st.st_mode) ? "a socket"
                                            : "not a regular file";
  throw UsageError("output '" + given + "' is " + kind + ": muspec writes each output to a temporary file and renames it "
                   "into place, which would replace it; give a regular file path (or leave the option out)");
}

void fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open '" + path + "' to flush it: " + std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  // Some file systems cannot fsync a directory (EINVAL); the rename itself has happened.
  if (rc != 0 && !(flags & O_DIRECTORY && (err == EINVAL || err == ENOTSUP)))
    throw Error("cannot flush '" + path + "' to disk: " + std::strerror(err));
}

/// The temporary gets the permission bits of the file it replaces (a new file keeps the
/// 0666-minus-umask it was created with).
void keep_mode(const std::string& temp, const std::string& final) {
  struct stat st;
  if (::stat(final.c_str(), &st) == 0 && S_ISREG(st.st_mode)) ::chmod(temp.c_str(), st.st_mode & 07777);
}

/// `<name>.tmp.<pid>.<8 hex>` or `<name>.old.<pid>.<8 hex>`: the pid, else 0.
long temp_owner(const std::string& entry, const std::string& name) {
  for (const char* kind : {".tmp.", ".old."}) {
    const std::string prefix = name + kind;
    if (entry.compare(0, prefix.size(), prefix) != 0) continue;
    const char* p = entry.c_str() + prefix.size();
    char* end = nullptr;
    const long pid = std::strtol(p, &end, 10);
    if (end == p || *end != '.' || std::strlen(end + 1) != 8 || pid <= 0) return 0;
    if (std::strspn(end + 1, "0123456789abcdef") != 8) return 0;
    return pid;
  }
  return 0;
}

/// Whether process `pid` may still write: it exists and is not a zombie (a dead process its
/// parent has not reaped yet, such as the ranks of a killed mpirun under a container init
/// that reaps nothing). EPERM: alive, not ours to judge.
bool may_still_write(long pid) {
  if (::kill(static_cast<pid_t>(pid), 0) != 0) return errno != ESRCH;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  std::getline(f, stat);  // "pid (comm) state ..."; comm may hold ')' and spaces: the last ')' ends it
  const size_t close = stat.rfind(')');
  return !(close != std::string::npos && close + 2 < stat.size() && stat[close + 2] == 'Z');
}

/// Exclusive advisory locks (flock) on the output directories, in name order (so two commits
/// cannot deadlock), held while one transaction renames: two runs writing the same outputs
/// then commit one after the other, never interleaved. Released on destruction.
class DirectoryLocks {
 public:
  explicit DirectoryLocks(const std::set<std::string>& dirs) {
    for (const auto& d : dirs) {
      const int fd = ::open(d.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (fd < 0) continue;  // the rename will report the directory's problem
      while (::flock(fd, LOCK_EX) != 0 && errno == EINTR) {
      }
      fds_.push_back(fd);
    }
  }
  ~DirectoryLocks() {
    for (int fd : fds_) ::close(fd);  // closing releases the lock
  }
  DirectoryLocks(const DirectoryLocks&) = delete;
  DirectoryLocks& operator=(const DirectoryLocks&) = delete;

 private:
  std::vector<int> fds_;
};

}  // namespace

std::vector<std::string> remove_stale_temporaries(const std::string& final) {
  std::vector<std::string> removed;
  const std::string dir = dir_of(final), name = base_of(final);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return removed;
  while (const dirent* e = ::readdir(d)) {
    const long pid = temp_owner(e->d_name, name);
    if (pid == 0 || pid == static_cast<long>(getpid())) continue;
    if (may_still_write(pid)) continue;
    const std::string path = dir + "/" + e->d_name;
    struct stat st;
    if (::lstat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::unlink(path.c_str()) == 0) removed.push_back(path);
  }
  ::closedir(d);
  return removed;
}

void check_output_target(const std::string& path) {
  if (!path.empty()) refuse_non_regular(resolve_link(path), path);
}

AtomicOutput::AtomicOutput(std::string final_path) {
  if (final_path.empty()) throw UsageError("empty output path");
  final_ = resolve_link(final_path);
  refuse_non_regular(final_, final_path);
  temp_ = final_ + unique_suffix("tmp");
  for (const auto& p : remove_stale_temporaries(final_))
    std::cerr << "muspec: note: removed " << p << ", a temporary file left by a muspec process that no longer runs\n";
}

AtomicOutput::~AtomicOutput() {
  if (!committed_) std::remove(temp_.c_str());
}

void AtomicOutput::commit() {
  keep_mode(temp_, final_);
  fsync_path(temp_, O_RDONLY);
  if (t_transaction != nullptr) {
    t_transaction->stage(temp_, final_);
    committed_ = true;  // the transaction owns the temporary now
    return;
  }
  refuse_non_regular(final_, final_);  // it may have changed since the constructor
  if (std::rename(temp_.c_str(), final_.c_str()) != 0)
    throw Error("cannot write '" + final_ + "': " + std::strerror(errno));
  committed_ = true;
  fsync_path(dir_of(final_), O_RDONLY | O_DIRECTORY);
}

OutputTransaction::OutputTransaction() {
  if (t_transaction != nullptr) throw UsageError("output transactions do not nest");
  t_transaction = this;
}

OutputTransaction::~OutputTransaction() {
  if (t_transaction == this) t_transaction = nullptr;
  if (!committed_) discard();
}

void OutputTransaction::stage(const std::string& temp, const std::string& final) { staged_.push_back({temp, final, ""}); }

void OutputTransaction::discard() noexcept {
  for (const auto& s : staged_) {
    std::remove(s.temp.c_str());
    if (!s.backup.empty()) std::remove(s.backup.c_str());
  }
  staged_.clear();
}

void OutputTransaction::commit() {
  t_transaction = nullptr;
  std::set<std::string> dirs;
  for (const auto& s : staged_) dirs.insert(dir_of(s.final));
  const DirectoryLocks locks(dirs);
  for (const auto& s : staged_) refuse_non_regular(s.final, s.final);  // before any backup link exists
  // Keep every previous final file as a hard link, so a failed rename can be rolled back.
  for (auto& s : staged_) {
    const std::string backup = s.final + unique_suffix("old");
    if (::link(s.final.c_str(), backup.c_str()) == 0) s.backup = backup;
  }
  for (size_t i = 0; i < staged_.size(); ++i) {
    if (std::rename(staged_[i].temp.c_str(), staged_[i].final.c_str()) == 0) continue;
    const std::string why = std::strerror(errno);
    for (size_t j = 0; j < i; ++j) {  // put back what was there before
      Staged& done = staged_[j];
      if (done.backup.empty()) std::remove(done.final.c_str());
      else std::rename(done.backup.c_str(), done.final.c_str());
      done.backup.clear();  // renamed back, or (should that fail) left on disk rather than removed
    }
    throw Error("cannot write '" + staged_[i].final + "': " + why + "; no output was changed");
  }
  committed_ = true;
  for (const auto& s : staged_)
    if (!s.backup.empty()) std::remove(s.backup.c_str());
  for (const auto& d : dirs) fsync_path(d, O_RDONLY | O_DIRECTORY);
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
