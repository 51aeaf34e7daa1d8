#include "io/bus_guard.h"

#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <vector>

namespace muspec {

namespace {

/// One registered mapping. The handler reads slots without locks: `begin` is published last
/// on registration and cleared first on removal, so a slot is never seen half-written.
struct Slot {
  std::atomic<uintptr_t> begin{0};
  std::atomic<uintptr_t> end{0};
  std::atomic<uint64_t> faults{0};
};

constexpr int64_t kBlockSlots = 4096;
constexpr int64_t kMaxBlocks = 256;  // 2^20 mappings at once

/// Blocks are allocated under `g_mutex` and never freed, so the handler may walk them freely.
std::atomic<Slot*> g_blocks[kMaxBlocks];
std::atomic<int64_t> g_used{0};  ///< slots ever handed out (the handler's search bound)
std::mutex g_mutex;
std::vector<int64_t> g_free;     ///< returned slots, reused first
struct sigaction g_previous;
uintptr_t g_page = 4096;

thread_local uint64_t t_faults __attribute__((tls_model("initial-exec"))) = 0;

Slot* slot_at(int64_t i) {
  Slot* block = g_blocks[i / kBlockSlots].load(std::memory_order_acquire);
  return block == nullptr ? nullptr : &block[i % kBlockSlots];
}

Slot* find_slot(uintptr_t addr) {
  const int64_t used = g_used.load(std::memory_order_acquire);
  for (int64_t i = 0; i < used; ++i) {
    Slot* s = slot_at(i);
    if (s == nullptr) continue;
    const uintptr_t b = s->begin.load(std::memory_order_acquire);
    if (b != 0 && addr >= b && addr < s->end.load(std::memory_order_acquire)) return s;
  }
  return nullptr;
}

/// Not ours: hand the signal to whoever had it before (a sanitizer), or die of it as before.
void forward(int sig, siginfo_t* info, void* context) {
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction != nullptr) return g_previous.sa_sigaction(sig, info, context);
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    return g_previous.sa_handler(sig);
  }
  struct sigaction dfl;
  std::memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(sig, &dfl, nullptr);
  if (info->si_code <= 0) raise(sig);  // sent by kill(): no faulting instruction to retry
  // Otherwise returning retries the faulting access, which now kills the process.
}

void on_sigbus(int sig, siginfo_t* info, void* context) {
  const int saved_errno = errno;
  const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  Slot* s = info->si_code > 0 ? find_slot(addr) : nullptr;
  if (s != nullptr) {
    // Zero pages from the faulting page to the end of the mapping: the bytes past the new end
    // of file, and whatever lies between, read as zeros from now on (one fault per mapping).
    const uintptr_t from = addr & ~(g_page - 1);
    const uintptr_t to = (s->end.load(std::memory_order_relaxed) + g_page - 1) & ~(g_page - 1);
    void* p = mmap(reinterpret_cast<void*>(from), to - from, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
    if (p != MAP_FAILED) {
      s->faults.fetch_add(1, std::memory_order_relaxed);
      ++t_faults;
      errno = saved_errno;
      return;
    }
  }
  errno = saved_errno;
  forward(sig, info, context);
}

void install_handler() {
  g_page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  struct sigaction sa;
  std::memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGBUS, &sa, &g_previous);
}

}  // namespace

int64_t register_guarded_mapping(const void* begin, uint64_t size) {
  static std::once_flag installed;
  std::call_once(installed, install_handler);
  std::lock_guard<std::mutex> lock(g_mutex);
  int64_t i;
  if (!g_free.empty()) {
    i = g_free.back();
    g_free.pop_back();
  } else {
    i = g_used.load(std::memory_order_relaxed);
    if (i >= kBlockSlots * kMaxBlocks) return -1;
    if (i % kBlockSlots == 0) g_blocks[i / kBlockSlots].store(new Slot[kBlockSlots], std::memory_order_release);
    g_used.store(i + 1, std::memory_order_release);
  }
  Slot* s = slot_at(i);
  s->faults.store(0, std::memory_order_relaxed);
  s->end.store(reinterpret_cast<uintptr_t>(begin) + size, std::memory_order_release);
  s->begin.store(reinterpret_cast<uintptr_t>(begin), std::memory_order_release);
  return i;
}

void unregister_guarded_mapping(int64_t slot) {
  if (slot < 0) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  slot_at(slot)->begin.store(0, std::memory_order_release);
  g_free.push_back(slot);
}

uint64_t guarded_mapping_faults(int64_t slot) {
  return slot < 0 ? 0 : slot_at(slot)->faults.load(std::memory_order_relaxed);
}

uint64_t bus_faults_on_this_thread() { return t_faults; }

}  // namespace muspec
