// Issue 14: the outputs of one command are committed as one unit (core/atomic_file.h): all of
// them or none, the previous files put back when a rename fails, and two commits into one
// directory never interleaved.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <thread>

#include "core/atomic_file.h"
#include "core/error.h"
#include "test_support.h"

using muspec_test::read_text;
using muspec_test::TempDir;
using muspec_test::write_bytes;
namespace fs = std::filesystem;

namespace {

bool has_leftovers(const TempDir& dir) {
  for (const auto& e : fs::directory_iterator(dir.path())) {
    const std::string n = e.path().filename().string();
    if (n.find(".tmp.") != std::string::npos || n.find(".old.") != std::string::npos) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("output transaction: nothing changes until commit, nothing at all without it", "[outputs][atomic]") {
  TempDir dir("tx");
  const std::string a = dir.file("a.txt"), b = dir.file("b.txt");
  write_bytes(a, "old a");
  {
    muspec::OutputTransaction tx;
    muspec::write_file_atomically(a, "new a");
    muspec::write_file_atomically(b, "new b");
    CHECK(read_text(a) == "old a");  // staged, not renamed (before: each file renamed at once)
    CHECK_FALSE(fs::exists(b));
  }  // destroyed without commit: an error in a later output
  CHECK(read_text(a) == "old a");
  CHECK_FALSE(fs::exists(b));
  CHECK_FALSE(has_leftovers(dir));
  {
    muspec::OutputTransaction tx;
    muspec::write_file_atomically(a, "new a");
    muspec::write_file_atomically(b, "new b");
    tx.commit();
  }
  CHECK(read_text(a) == "new a");
  CHECK(read_text(b) == "new b");
  CHECK_FALSE(has_leftovers(dir));
}

TEST_CASE("output transaction: a failed rename puts back the outputs already renamed", "[outputs][atomic]") {
  TempDir dir("tx");
  const std::string a = dir.file("a.txt"), fresh = dir.file("fresh.txt"), last = dir.file("last.txt");
  write_bytes(a, "old a");
  muspec::OutputTransaction tx;
  muspec::write_file_atomically(a, "new a");
  muspec::write_file_atomically(fresh, "new file");
  muspec::write_file_atomically(last, "vanishes");
  // The last temporary disappears before the commit (a cleaner, a full disk): its rename fails.
  for (const auto& e : fs::directory_iterator(dir.path()))
    if (e.path().filename().string().rfind("last.txt.tmp.", 0) == 0) fs::remove(e.path());
  CHECK_THROWS_WITH(tx.commit(), Catch::Contains("no output was changed"));
  CHECK(read_text(a) == "old a");  // renamed, then put back
  CHECK_FALSE(fs::exists(fresh));  // renamed, then removed
  CHECK_FALSE(fs::exists(last));
  CHECK_FALSE(has_leftovers(dir));
}

TEST_CASE("output transaction: a commit waits for another holding the directory", "[outputs][atomic]") {
  TempDir dir("tx");
  const std::string a = dir.file("a.txt");
  const int fd = ::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY);
  REQUIRE(fd >= 0);
  REQUIRE(::flock(fd, LOCK_EX) == 0);  // another run in its commit
  std::atomic<bool> done{false};
  std::thread writer([&] {
    muspec::OutputTransaction tx;
    muspec::write_file_atomically(a, "second run");
    tx.commit();
    done = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK_FALSE(done.load());  // before: committed at once, interleaving with the other run
  CHECK_FALSE(fs::exists(a));
  ::close(fd);
  writer.join();
  CHECK(done.load());
  CHECK(read_text(a) == "second run");
}

// Issue 14 item 6: a full disk while spectra.h5 is written. The file size limit (ulimit -f, with
// SIGXFSZ ignored so write() fails with EFBIG) stands in for ENOSPC: both reach libhdf5's write
// path the same way. muspec must report the file and the cause, exit 2 without a crash (libhdf5's
// exit handler used to segfault on the failed file), and leave the old outputs as they were.
TEST_CASE("scan: a write that fails for lack of space exits 2 and keeps the old outputs", "[outputs][atomic][cli]") {
  TempDir dir("fsize");
  const std::string h5 = dir.file("out.h5"), csv = dir.file("summary.csv");
  write_bytes(h5, "previous store");
  write_bytes(csv, "previous summary");
  const auto r = muspec_test::run_command("trap '' XFSZ; ulimit -f 100; '" + std::string(MUSPEC_BINARY) + "' scan '" +
                                          muspec_test::source_dir() + "/sample_data/runs/d80/checkpoint-300" + "' -o '" +
                                          h5 + "' --summary '" + csv + "' -q");
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("out.h5") != std::string::npos);
  CHECK(r.err.find("File too large") != std::string::npos);
  CHECK(read_text(h5) == "previous store");
  CHECK(read_text(csv) == "previous summary");
  CHECK_FALSE(has_leftovers(dir));
}

// The same with a real ENOSPC: the outputs on a 64 KiB tmpfs (needs root and a kernel that lets
// this process mount; skipped with a warning elsewhere).
TEST_CASE("scan: a full disk (small tmpfs) exits 2 and keeps the old outputs", "[outputs][atomic][cli]") {
  TempDir dir("enospc");
  const std::string mnt = dir.file("small");
  fs::create_directories(mnt);
  if (geteuid() != 0 || muspec_test::run_command("mount -t tmpfs -o size=64k tmpfs '" + mnt + "'").exit_code != 0) {
    WARN("cannot mount a tmpfs here (not root, or no mount permission): skipped");
    return;
  }
  struct Unmount {
    std::string at;
    ~Unmount() { muspec_test::run_command("umount '" + at + "'"); }
  } unmount{mnt};
  const std::string h5 = mnt + "/out.h5", json = mnt + "/summary.json";
  write_bytes(h5, "previous store");
  write_bytes(json, "previous summary");
  const auto r = muspec_test::run_muspec("scan '" + muspec_test::source_dir() + "/sample_data/runs/d80/checkpoint-300' -o '" + h5 +
                                         "' --json '" + json + "' -q");
  INFO(r.err);
  CHECK(r.exit_code == 2);
  CHECK(r.err.find("out.h5") != std::string::npos);
  CHECK(r.err.find("No space left on device") != std::string::npos);
  CHECK(read_text(h5) == "previous store");
  CHECK(read_text(json) == "previous summary");
  bool leftovers = false;
  for (const auto& e : fs::directory_iterator(mnt)) leftovers |= e.path().filename().string().find(".tmp.") != std::string::npos;
  CHECK_FALSE(leftovers);
}

TEST_CASE("stale temporaries: a zombie's temporary is removed, a live process's is kept", "[outputs][atomic]") {
  // The ranks of a killed mpirun end as zombies when the container's init reaps nothing: their
  // pids still answer kill(pid, 0), but they will never write again.
  muspec_test::TempDir dir("zombie");
  const std::string final_path = dir.file("s.csv");
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) ::_exit(0);
  for (int k = 0; k < 200 && muspec_test::read_text("/proc/" + std::to_string(child) + "/stat").find(") Z") == std::string::npos; ++k)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(muspec_test::read_text("/proc/" + std::to_string(child) + "/stat").find(") Z") != std::string::npos);  // not reaped yet
  const std::string zombie_temp = final_path + ".tmp." + std::to_string(child) + ".0badf00d";
  const std::string live_temp = final_path + ".tmp." + std::to_string(::getppid()) + ".0badf00d";  // our parent runs
  muspec_test::write_bytes(zombie_temp, "half");
  muspec_test::write_bytes(live_temp, "in progress");
  const auto removed = muspec::remove_stale_temporaries(final_path);
  int status = 0;
  ::waitpid(child, &status, 0);
  CHECK(removed == std::vector<std::string>{zombie_temp});
  CHECK_FALSE(std::filesystem::exists(zombie_temp));
  CHECK(std::filesystem::exists(live_temp));
}
