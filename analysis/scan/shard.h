// Splitting one scan over several processes (`muspec scan --shard I/N`, Slurm job arrays) and
// putting the parts back together (`muspec merge`): the cost model, the partition, the
// fingerprint that tells two processes they scan the same inputs with the same options, and the
// record order every scan writes. See docs/cluster.md.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "spectra/record.h"

namespace muspec {

/// The I-th (1-based) of N parts of a scan; count == 0 means "the whole scan".
struct ShardSpec {
  int index = 0;
  int count = 0;
  bool active() const { return count > 0; }
  std::string text() const { return std::to_string(index) + "/" + std::to_string(count); }
};

/// Parses "I/N" (1 <= I <= N <= 100000); throws UsageError naming `option` otherwise.
ShardSpec parse_shard(const std::string& text, const std::string& option = "--shard");

/// Estimated work of one matrix stack, in flops up to a constant: the Gram product
/// m·n·min(m,n) plus the eigensolver's min(m,n)^3, times the number of 2-D slices.
double matrix_cost(int64_t rows, int64_t cols, int64_t slices);

/// Longest-processing-time-first: matrices by decreasing cost (ties: lower index first), each
/// onto the part with the least work so far (ties: the lowest part). Returns the 0-based part
/// of each matrix. A pure function of `costs` and `parts`, so every process computes the same
/// partition from the same inputs and options.
std::vector<int> assign_parts(const std::vector<double>& costs, int parts);

/// 64-bit FNV-1a (a fixed, portable hash: std::hash may differ between builds, and the
/// fingerprint is compared between processes, machines and muspec builds).
class Fingerprint {
 public:
  Fingerprint& add(const std::string& s);
  Fingerprint& add(int64_t v);
  Fingerprint& add(double v);  ///< by bit pattern
  std::string hex() const;
  uint64_t value() const { return h_; }

 private:
  void bytes(const void* p, size_t n);
  uint64_t h_ = 1469598103934665603ULL;
};

/// Puts records into the order every scan writes: by run, then step, then scan order (the
/// matrix's index in the scan's file order); records of one matrix keep their relative order.
/// `scan_order` holds one entry per record and is permuted along with them.
void order_records(std::vector<SpectrumRecord>& records, std::vector<int64_t>& scan_order);

/// Store attributes of a part written by `scan --shard` (read back by `merge`).
inline constexpr const char* kAttrShard = "shard";                  ///< "I/N"
inline constexpr const char* kAttrScanFingerprint = "scan_fingerprint";  ///< inputs and options
inline constexpr const char* kAttrScanMatrices = "scan_matrices";    ///< matrices in the whole scan

}  // namespace muspec
