// The scan journal: the records of the matrices a scan has finished, appended beside its output
// as they complete, so that a killed scan resumes where it stopped (`muspec scan --resume`).
// Removed when the scan's outputs are committed. Format (docs/cluster.md), little-endian:
//
//   file    = "MUSPECJ1" header entry*
//   header  = u32 length, u64 checksum, payload: string scan_fingerprint, string inputs_stamp,
//             string options, i64 matrices
//   entry   = u32 length, u64 checksum, payload: i64 matrix, u32 n, record*n, u32 k, issue*k
//   record  = every SpectrumRecord field in declaration order (strings: u32 length + bytes;
//             int64 / double as 8 bytes; bools as one byte; vectors: u32 count + items), without
//             the layer metrics (spectra/record_codec.h; recomputed from sigma on reading)
//   issue   = string file, string tensor, string reason
//
// The checksum is 64-bit FNV-1a of the payload. The reader treats the file as untrusted: every
// length is checked against what is left, every record against the store's rules
// (spectrum_record_problem), every matrix index against the scan; it keeps the entries up to the
// first one that is torn or damaged (a kill in the middle of a write) and the scan redoes the rest.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "scan/scan.h"

namespace muspec {

struct JournalHeader {
  std::string scan_fingerprint;  ///< the matrices selected and the options (scan/shard.h)
  std::string inputs_stamp;      ///< sizes and modification times of the input files
  std::string options;           ///< the options, as text, for messages
  int64_t matrices = 0;          ///< matrices the (part of the) scan selects
};

struct JournalEntry {
  int64_t matrix = 0;  ///< index in the scan's file order
  std::vector<SpectrumRecord> records;
  std::vector<ScanIssue> skipped;
};

struct JournalContents {
  JournalHeader header;
  std::vector<JournalEntry> entries;
  uint64_t valid_bytes = 0;  ///< where the last good entry ends
  std::string damage;        ///< why reading stopped before the end, or ""
};

/// Parses a journal. Throws InputError naming `path` when the magic or the header is bad;
/// damaged or torn entries end the list (see JournalContents::damage).
JournalContents parse_journal(const std::string& bytes, const std::string& path);

/// Serializes one entry (length, checksum, payload), as appended to the file.
std::string encode_journal_entry(const JournalEntry& entry);
/// The magic and the header, as at the start of the file.
std::string encode_journal_header(const JournalHeader& header);

/// An open journal that a scan appends to from its worker threads.
class ScanJournal {
 public:
  /// Opens `path` for the scan described by `header`. An existing journal with the same
  /// fingerprint, stamp and options is continued: its entries (those for matrices below
  /// header.matrices) are returned by take_completed(), a torn tail is cut off. An existing
  /// journal of another scan throws UsageError saying what differs. A missing one is created.
  ScanJournal(std::string path, const JournalHeader& header);
  ~ScanJournal();
  ScanJournal(const ScanJournal&) = delete;
  ScanJournal& operator=(const ScanJournal&) = delete;

  std::vector<JournalEntry> take_completed() { return std::move(completed_); }
  const std::string& notice() const { return notice_; }
  /// Appends (write(2) at once, so a killed process loses nothing written; fsync every 32
  /// entries or 2 seconds, so a crashed machine loses at most that). Thread-safe.
  void append(const JournalEntry& entry);
  /// fsync now.
  void sync();

 private:
  std::string path_;
  int fd_ = -1;
  std::mutex mutex_;
  int unsynced_ = 0;
  double last_sync_ = 0;
  std::vector<JournalEntry> completed_;
  std::string notice_;
};

/// Size and modification time of each file, as one fingerprint (a changed input is refused).
std::string inputs_stamp(const std::vector<std::string>& files);

}  // namespace muspec
