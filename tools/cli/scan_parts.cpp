#include "cli/scan_parts.h"

#include <sys/stat.h>

#include <iostream>

#include "core/error.h"

namespace muspec::cli {

void add_part_attributes(SpectraFile& f, const ScanResult& r, const ShardSpec& shard) {
  f.attributes[kAttrShard] = shard.text();
  f.attributes[kAttrScanFingerprint] = r.fingerprint;
  f.attributes[kAttrScanMatrices] = std::to_string(r.matrices);
  f.scan_order = r.scan_order;
}

std::string journal_path(const std::string& h5, const std::string& csv, const std::string& json, bool no_journal, bool resume,
                         bool announce) {
  if (no_journal && resume) throw UsageError("--resume needs the journal that --no-journal turns off");
  const std::string& first = !h5.empty() ? h5 : !csv.empty() ? csv : json;
  if (no_journal || first.empty()) {
    if (resume) throw UsageError("--resume needs an output (-o, --summary or --json): the journal is kept beside it");
    return "";
  }
  const std::string path = first + ".journal";
  struct stat st {};
  if (resume && announce && ::stat(path.c_str(), &st) != 0)
    std::cerr << "muspec: note: --resume: no scan journal at " << path << "; scanning everything\n";
  return path;
}

}  // namespace muspec::cli
