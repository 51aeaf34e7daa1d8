// What `muspec scan` and `muspec merge` share about parts (--shard) and journals.
#pragma once

#include <string>

#include "scan/scan.h"
#include "store/spectra_store.h"

namespace muspec::cli {

/// The attributes a part store carries for `merge` (scan/shard.h) and its records' scan order.
void add_part_attributes(SpectraFile& f, const ScanResult& r, const ShardSpec& shard);

/// Where a scan keeps its journal: beside its first output (-o, else --summary, else --json)
/// as "<output>.journal"; "" with --no-journal or without outputs. Notes on stderr when
/// --resume finds no journal. Throws UsageError for --resume with --no-journal.
std::string journal_path(const std::string& h5, const std::string& csv, const std::string& json, bool no_journal, bool resume,
                         bool announce = true);

}  // namespace muspec::cli
