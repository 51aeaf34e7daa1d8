#include "scan/journal.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>

#include "core/byte_codec.h"
#include "core/error.h"
#include "scan/shard.h"
#include "spectra/layer_metrics.h"
#include "spectra/record_codec.h"
#include "store/spectra_store.h"

namespace muspec {

namespace {

constexpr char kMagic[] = "MUSPECJ1";
constexpr size_t kMagicSize = 8;
constexpr uint32_t kMaxEntryBytes = 1u << 30;  // one matrix stack's records; far above any real one

// ---------------------------------------------------------------- encoding

// The layer metrics are not journaled: they are a function of sigma, recomputed on reading
// exactly as the scan computed them (analysis/scan/scan.cpp add_analysed).
void put_record(ByteWriter& w, const SpectrumRecord& r) { put_spectrum_record(w, r, LayerMetricsCoding::Omitted); }

/// u32 length, u64 checksum, payload.
std::string framed(const std::string& payload) {
  ByteWriter w;
  w.u32(static_cast<uint32_t>(payload.size()));
  Fingerprint f;
  f.add(payload);
  w.i64(static_cast<int64_t>(f.value()));
  return w.bytes() + payload;
}

// ---------------------------------------------------------------- decoding (untrusted)

using Malformed = ByteCodecError;
using Reader = ByteReader;

SpectrumRecord get_record(Reader& r) {
  SpectrumRecord x = get_spectrum_record(r, LayerMetricsCoding::Omitted);
  if (std::string problem = spectrum_record_problem(x); !problem.empty())
    throw Malformed{"record '" + x.name.substr(0, 80) + "': " + problem};
  if (!x.sigma.empty()) x.layer_metrics = compute_layer_metrics(x.sigma, x.rows, x.cols, x.floor);
  return x;
}

/// One framed payload: its bytes after the length and checksum were checked.
std::string next_payload(Reader& r) {
  if (r.left() < 12) throw Malformed{"the entry is torn (" + std::to_string(r.left()) + " bytes)"};
  const uint32_t length = r.u32();
  const uint64_t checksum = static_cast<uint64_t>(r.i64());
  if (length > kMaxEntryBytes || length > r.left())
    throw Malformed{"the entry is torn (it declares " + std::to_string(length) + " bytes, " + std::to_string(r.left()) + " are left)"};
  std::string payload(r.take(length, "an entry"), length);
  Fingerprint f;
  f.add(payload);
  if (f.value() != checksum) throw Malformed{"an entry's checksum does not match its bytes"};
  return payload;
}

JournalEntry get_entry(const std::string& payload, int64_t matrices) {
  Reader r(payload.data(), payload.size());
  JournalEntry e;
  e.matrix = r.i64();
  if (e.matrix < 0 || e.matrix >= matrices)
    throw Malformed{"matrix " + std::to_string(e.matrix) + " is outside the scan's " + std::to_string(matrices)};
  e.records.resize(r.count(64, "a record"));
  for (auto& rec : e.records) rec = get_record(r);
  e.skipped.resize(r.count(12, "an issue"));
  for (auto& s : e.skipped) s.file = r.str(), s.tensor = r.str(), s.reason = r.str();
  if (r.left() != 0) throw Malformed{"an entry has " + std::to_string(r.left()) + " bytes past its end"};
  return e;
}

double seconds_now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void write_all(int fd, const std::string& bytes, const std::string& path) {
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t k = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (k < 0 && errno == EINTR) continue;
    if (k <= 0) throw Error("cannot write scan journal '" + path + "': " + std::strerror(errno));
    done += static_cast<size_t>(k);
  }
}

/// Why an existing journal does not belong to this scan, or "".
std::string mismatch(const JournalHeader& was, const JournalHeader& now) {
  if (was.options != now.options) return "it was written with other options (" + was.options + "; now " + now.options + ")";
  if (was.scan_fingerprint != now.scan_fingerprint || was.matrices != now.matrices)
    return "it was written for other inputs (" + std::to_string(was.matrices) + " matrices, fingerprint " + was.scan_fingerprint +
           "; this scan selects " + std::to_string(now.matrices) + ", fingerprint " + now.scan_fingerprint + ")";
  if (was.inputs_stamp != now.inputs_stamp) return "an input file changed since it was written (size or modification time)";
  return "";
}

}  // namespace

std::string encode_journal_entry(const JournalEntry& entry) {
  ByteWriter w;
  w.i64(entry.matrix);
  w.u32(static_cast<uint32_t>(entry.records.size()));
  for (const auto& r : entry.records) put_record(w, r);
  w.u32(static_cast<uint32_t>(entry.skipped.size()));
  for (const auto& s : entry.skipped) w.str(s.file), w.str(s.tensor), w.str(s.reason);
  return framed(w.bytes());
}

std::string encode_journal_header(const JournalHeader& h) {
  ByteWriter w;
  w.str(h.scan_fingerprint), w.str(h.inputs_stamp), w.str(h.options), w.i64(h.matrices);
  return std::string(kMagic, kMagicSize) + framed(w.bytes());
}

JournalContents parse_journal(const std::string& bytes, const std::string& path) {
  JournalContents out;
  Reader r(bytes.data(), bytes.size());
  try {
    if (bytes.size() < kMagicSize || bytes.compare(0, kMagicSize, kMagic) != 0) throw Malformed{"not a muspec scan journal"};
    r.take(kMagicSize, "the magic");
    const std::string payload = next_payload(r);
    Reader h(payload.data(), payload.size());
    out.header.scan_fingerprint = h.str(), out.header.inputs_stamp = h.str(), out.header.options = h.str();
    out.header.matrices = h.i64();
    if (out.header.matrices < 0 || h.left() != 0) throw Malformed{"the header is malformed"};
  } catch (const Malformed& m) {
    throw InputError(path, "", "bad scan journal: " + m.what);
  }
  out.valid_bytes = bytes.size() - r.left();
  while (r.left() > 0) {
    try {
      out.entries.push_back(get_entry(next_payload(r), out.header.matrices));
      out.valid_bytes = bytes.size() - r.left();
    } catch (const Malformed& m) {
      out.damage = m.what + " at byte " + std::to_string(out.valid_bytes);
      break;
    }
  }
  return out;
}

ScanJournal::ScanJournal(std::string path, const JournalHeader& header) : path_(std::move(path)) {
  std::ifstream in(path_, std::ios::binary);
  if (in) {
    std::stringstream ss;
    ss << in.rdbuf();
    JournalContents old;
    try {
      old = parse_journal(ss.str(), path_);
    } catch (const InputError& e) {
      throw UsageError(std::string(e.what()) + "; remove it to start this scan afresh");
    }
    if (std::string why = mismatch(old.header, header); !why.empty())
      throw UsageError("the scan journal '" + path_ + "' belongs to another scan: " + why +
                       "; remove it to start this scan afresh, or rerun the scan it belongs to");
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd_ < 0 || ::ftruncate(fd_, static_cast<off_t>(old.valid_bytes)) != 0 || ::lseek(fd_, 0, SEEK_END) < 0) {
      const std::string why = std::strerror(errno);
      if (fd_ >= 0) ::close(fd_);  // the destructor does not run for a throwing constructor
      throw Error("cannot continue scan journal '" + path_ + "': " + why);
    }
    std::vector<bool> seen(static_cast<size_t>(header.matrices), false);
    for (auto& e : old.entries)
      if (!seen[static_cast<size_t>(e.matrix)]) seen[static_cast<size_t>(e.matrix)] = true, completed_.push_back(std::move(e));
    notice_ = "resuming from the scan journal " + path_ + ": " + std::to_string(completed_.size()) + " of " +
              std::to_string(header.matrices) + " matrices were done" +
              (old.damage.empty() ? "" : " (its tail was cut off: " + old.damage + ")");
  } else {
    fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ < 0) throw Error("cannot create scan journal '" + path_ + "': " + std::strerror(errno));
    try {
      write_all(fd_, encode_journal_header(header), path_);
      sync();
    } catch (...) {
      ::close(fd_);
      ::unlink(path_.c_str());
      throw;
    }
  }
  last_sync_ = seconds_now();
}

ScanJournal::~ScanJournal() {
  if (fd_ >= 0) {
    ::fsync(fd_);
    ::close(fd_);
  }
}

void ScanJournal::append(const JournalEntry& entry) {
  const std::string bytes = encode_journal_entry(entry);
  std::lock_guard<std::mutex> lock(mutex_);
  write_all(fd_, bytes, path_);
  if (++unsynced_ >= 32 || seconds_now() - last_sync_ > 2.0) {
    ::fsync(fd_);
    unsynced_ = 0;
    last_sync_ = seconds_now();
  }
}

void ScanJournal::sync() {
  if (fd_ >= 0 && ::fsync(fd_) != 0) throw Error("cannot sync scan journal '" + path_ + "': " + std::strerror(errno));
  unsynced_ = 0;
}

std::string inputs_stamp(const std::vector<std::string>& files) {
  Fingerprint f;
  for (const auto& p : files) {
    struct stat st {};
    const bool ok = ::stat(p.c_str(), &st) == 0;
    f.add(p).add(static_cast<int64_t>(ok ? st.st_size : -1));
    f.add(static_cast<int64_t>(ok ? st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec : -1));
  }
  return f.hex();
}

}  // namespace muspec
