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

#include "core/error.h"
#include "scan/shard.h"
#include "spectra/layer_metrics.h"
#include "store/spectra_store.h"

namespace muspec {

namespace {

constexpr char kMagic[] = "MUSPECJ1";
constexpr size_t kMagicSize = 8;
constexpr uint32_t kMaxEntryBytes = 1u << 30;  // one matrix stack's records; far above any real one

// ---------------------------------------------------------------- encoding

class Writer {
 public:
  void u8(uint8_t v) { s_.push_back(static_cast<char>(v)); }
  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i) u8(static_cast<uint8_t>(v >> (8 * i)));
  }
  void i64(int64_t v) {
    for (int i = 0; i < 8; ++i) u8(static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i)));
  }
  void f64(double v) {
    int64_t bits;
    std::memcpy(&bits, &v, 8);
    i64(bits);
  }
  void str(const std::string& v) {
    u32(static_cast<uint32_t>(v.size()));
    s_ += v;
  }
  void i64s(const std::vector<int64_t>& v) {
    u32(static_cast<uint32_t>(v.size()));
    for (int64_t x : v) i64(x);
  }
  void f64s(const std::vector<double>& v) {
    u32(static_cast<uint32_t>(v.size()));
    for (double x : v) f64(x);
  }
  std::string& bytes() { return s_; }

 private:
  std::string s_;
};

void put_record(Writer& w, const SpectrumRecord& r) {
  w.str(r.name), w.str(r.tensor), w.i64(r.slice), w.str(r.file), w.i64(r.rows), w.i64(r.cols);
  w.i64s(r.tensor_shape), w.str(r.dtype), w.str(r.transform);
  w.str(r.run), w.i64(r.step), w.i64(r.model_params), w.str(r.params_source), w.str(r.sharded), w.i64(r.shards);
  w.str(r.kind), w.str(r.parameter), w.str(r.op_type), w.i64(r.layer), w.i64(r.num_layers), w.f64(r.rel_depth);
  w.u8(r.muon), w.u8(r.transposed), w.str(r.method), w.str(r.device), w.f64(r.floor), w.i64(r.nonfinite);
  w.f64s(r.sigma);
  const SpectralSummary& s = r.summary;
  w.f64(s.sigma_max), w.f64(s.sigma_min), w.f64(s.frobenius), w.f64(s.nuclear), w.f64(s.cond), w.f64(s.stable_rank);
  w.f64(s.effective_rank), w.i64(s.below_floor);
  w.u32(static_cast<uint32_t>(s.quantiles.size()));
  for (const QuantileValue& q : s.quantiles) w.f64(q.q), w.f64(q.sigma), w.f64(q.rel_max), w.f64(q.rel_frob), w.f64(q.cond);
}

/// u32 length, u64 checksum, payload.
std::string framed(const std::string& payload) {
  Writer w;
  w.u32(static_cast<uint32_t>(payload.size()));
  Fingerprint f;
  f.add(payload);
  w.i64(static_cast<int64_t>(f.value()));
  return w.bytes() + payload;
}

// ---------------------------------------------------------------- decoding (untrusted)

struct Malformed {
  std::string what;
};

class Reader {
 public:
  Reader(const char* p, size_t n) : p_(p), n_(n) {}
  size_t left() const { return n_ - at_; }
  const char* take(size_t k, const char* what) {
    if (k > left()) throw Malformed{std::string(what) + " runs past the end"};
    const char* q = p_ + at_;
    at_ += k;
    return q;
  }
  uint8_t u8() { return static_cast<uint8_t>(*take(1, "a byte")); }
  uint32_t u32() {
    const auto* b = reinterpret_cast<const unsigned char*>(take(4, "a length"));
    return uint32_t{b[0]} | uint32_t{b[1]} << 8 | uint32_t{b[2]} << 16 | uint32_t{b[3]} << 24;
  }
  int64_t i64() {
    const auto* b = reinterpret_cast<const unsigned char*>(take(8, "a number"));
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = v << 8 | b[i];
    return static_cast<int64_t>(v);
  }
  double f64() {
    const int64_t bits = i64();
    double v;
    std::memcpy(&v, &bits, 8);
    return v;
  }
  bool flag() {
    const uint8_t v = u8();
    if (v > 1) throw Malformed{"a flag is neither 0 nor 1"};
    return v == 1;
  }
  std::string str() {
    const uint32_t k = u32();
    return std::string(take(k, "a string"), k);
  }
  /// A count of items of at least `item_bytes` each, checked against what is left.
  uint32_t count(size_t item_bytes, const char* what) {
    const uint32_t k = u32();
    if (static_cast<uint64_t>(k) * item_bytes > left()) throw Malformed{std::string(what) + " count runs past the end"};
    return k;
  }
  std::vector<int64_t> i64s() {
    std::vector<int64_t> v(count(8, "a shape"));
    for (auto& x : v) x = i64();
    return v;
  }
  std::vector<double> f64s() {
    std::vector<double> v(count(8, "a spectrum"));
    for (auto& x : v) x = f64();
    return v;
  }

 private:
  const char* p_;
  size_t n_, at_ = 0;
};

SpectrumRecord get_record(Reader& r) {
  SpectrumRecord x;
  x.name = r.str(), x.tensor = r.str(), x.slice = r.i64(), x.file = r.str(), x.rows = r.i64(), x.cols = r.i64();
  x.tensor_shape = r.i64s(), x.dtype = r.str(), x.transform = r.str();
  x.run = r.str(), x.step = r.i64(), x.model_params = r.i64(), x.params_source = r.str(), x.sharded = r.str();
  x.shards = r.i64();
  x.kind = r.str(), x.parameter = r.str(), x.op_type = r.str(), x.layer = r.i64(), x.num_layers = r.i64();
  x.rel_depth = r.f64();
  x.muon = r.flag(), x.transposed = r.flag(), x.method = r.str(), x.device = r.str(), x.floor = r.f64();
  x.nonfinite = r.i64();
  x.sigma = r.f64s();
  SpectralSummary& s = x.summary;
  s.sigma_max = r.f64(), s.sigma_min = r.f64(), s.frobenius = r.f64(), s.nuclear = r.f64(), s.cond = r.f64();
  s.stable_rank = r.f64(), s.effective_rank = r.f64(), s.below_floor = r.i64();
  s.quantiles.resize(r.count(40, "a quantile"));
  for (QuantileValue& q : s.quantiles) q.q = r.f64(), q.sigma = r.f64(), q.rel_max = r.f64(), q.rel_frob = r.f64(), q.cond = r.f64();
  if (std::string problem = spectrum_record_problem(x); !problem.empty())
    throw Malformed{"record '" + x.name.substr(0, 80) + "': " + problem};
  // The layer metrics are not journaled: they are a function of σ, recomputed exactly as the
  // scan computed them (analysis/scan/scan.cpp add_analysed).
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
  Writer w;
  w.i64(entry.matrix);
  w.u32(static_cast<uint32_t>(entry.records.size()));
  for (const auto& r : entry.records) put_record(w, r);
  w.u32(static_cast<uint32_t>(entry.skipped.size()));
  for (const auto& s : entry.skipped) w.str(s.file), w.str(s.tensor), w.str(s.reason);
  return framed(w.bytes());
}

std::string encode_journal_header(const JournalHeader& h) {
  Writer w;
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
