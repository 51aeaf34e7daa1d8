// Which matrices this process computes: all of them, or its part of a sharded scan
// (scan/shard.h), less those a scan journal says are done (scan/journal.h).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "scan/journal.h"
#include "scan/scan.h"

namespace muspec {

/// What identifies one selected matrix stack, before it is read.
struct MatrixIdentity {
  std::string text;  ///< every label and shape that ends up in its records
  std::string file;
  double cost = 0;   ///< matrix_cost()
};

struct ScanPlan {
  std::string fingerprint;           ///< the selected matrices and the options (not the shard)
  std::vector<size_t> todo;          ///< matrices to compute here, ascending
  std::vector<JournalEntry> done;    ///< matrices a journal had finished
  std::unique_ptr<ScanJournal> journal;  ///< null when ScanOptions::journal is empty
};

ScanPlan plan_scan(const ScanOptions& o, const std::vector<MatrixIdentity>& matrices, std::vector<std::string>& notices);

/// The options that change a scan's records, as text (for the fingerprint and messages).
std::string options_text(const ScanOptions& o);

/// A finished matrix goes into the journal unless it was skipped for a reason that may pass
/// (a read error, the file changing, memory): only NaN/Inf skips are final.
bool worth_journaling(const std::vector<SpectrumRecord>& records, const std::vector<ScanIssue>& skipped);

}  // namespace muspec
