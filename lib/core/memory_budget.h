// How much memory decoding may ask for at once: small files that declare huge sizes (a
// stride-0 view of 32768x32768 in a 632-byte .pt, an 8 MB .npz that inflates to 2^31
// elements, a pickle that copies one string into every value) are refused by name before the
// allocation, instead of being killed by the OOM killer or a cgroup limit, where bad_alloc
// never fires.
#pragma once

#include <cstdint>
#include <string>

namespace muspec {

/// The budget in bytes. Unless set_memory_budget() was called: the environment variable
/// MUSPEC_MEMORY_BUDGET (bytes, or with a K/M/G/T suffix, powers of 1024) when set, else the
/// smaller of MemAvailable (/proc/meminfo) and the cgroup v2 limit (/sys/fs/cgroup/memory.max,
/// or v1 memory.limit_in_bytes) minus the cgroup's current usage; 2^62 when none is known.
/// Read once and cached. Throws UsageError for a malformed MUSPEC_MEMORY_BUDGET.
uint64_t memory_budget();

/// Where the budget came from: "MUSPEC_MEMORY_BUDGET", "--memory-budget", "MemAvailable",
/// "the cgroup limit", or "no limit known".
std::string memory_budget_source();

/// Overrides the budget (the CLI's --memory-budget, tests). `source` says where it came from.
void set_memory_budget(uint64_t bytes, const std::string& source);

/// Parses "1073741824", "512M", "8G", "1.5T" into bytes. Throws UsageError naming `what`.
uint64_t parse_byte_size(const std::string& text, const std::string& what);

/// Throws InputError(file, tensor, ...) unless `bytes` fits in the budget: "decoding needs
/// 8.0 GiB (<what>) but the memory budget is 1.0 GiB (MemAvailable; set --memory-budget or
/// MUSPEC_MEMORY_BUDGET to change it)". Call before any allocation whose size a file declares.
void admit_allocation(uint64_t bytes, const std::string& file, const std::string& tensor, const std::string& what);

/// "8.0 GiB", "512 B".
std::string byte_size_text(uint64_t bytes);

}  // namespace muspec
