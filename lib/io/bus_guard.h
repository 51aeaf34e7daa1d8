// Surviving a mapped file that shrinks under the reader (SIGBUS), e.g. a checkpoint that
// `torch.save` truncates in place while a scan reads it.
#pragma once

#include <cstdint>

namespace muspec {

/// Why a fault handler and not pread() or sigsetjmp:
///
/// Every reader (safetensors, torch zips and pickles, npy/npz with zlib, the CUDA upload) reads
/// straight from a MappedFile, often through C libraries and C++ code with destructors. A
/// sigsetjmp/siglongjmp guard may only jump over frames without destructors, so it could cover
/// the decode loop but not zlib's inflate or the parsers; pread() copies would cost a second
/// buffer per matrix and a rewrite of every reader. Instead, a process-wide SIGBUS handler
/// looks the faulting address up among the registered mappings; if it lies in one, it maps
/// anonymous zero pages over the rest of that mapping (mmap MAP_FIXED, a plain system call),
/// counts the fault for the mapping and for the faulting thread, and returns: the read is
/// retried and sees zeros. Nothing is unwound, so every reader is covered as it is. Callers
/// then ask whether a fault happened while they read (bus_faults_on_this_thread(), or
/// MappedFile::faulted()) and discard what they computed from those bytes. A SIGBUS at any
/// other address is passed to the previous handler (or kills the process, as before).
///
/// Registers [begin, begin + size) as a guarded read-only file mapping and returns a slot
/// number for unregister_guarded_mapping(), or -1 when the registry is full (the mapping is
/// then unguarded; the registry grows to 2^20 mappings). Installs the handler on first use.
int64_t register_guarded_mapping(const void* begin, uint64_t size);

/// Forgets a slot; call before munmap().
void unregister_guarded_mapping(int64_t slot);

/// Number of SIGBUS faults on registered mappings that slot `slot` took (0 for slot -1).
uint64_t guarded_mapping_faults(int64_t slot);

/// Number of SIGBUS faults on registered mappings taken by the calling thread so far. Compare
/// before and after a read to know whether the bytes it saw were real.
uint64_t bus_faults_on_this_thread();

}  // namespace muspec
