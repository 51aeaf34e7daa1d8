#include "io/zip.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <unordered_set>

#include "core/error.h"
#include "core/memory_budget.h"

namespace muspec {

namespace {

constexpr uint32_t kLocalSig = 0x04034b50, kCentralSig = 0x02014b50, kEocdSig = 0x06054b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50, kZip64EocdSig = 0x06064b50;
constexpr uint64_t kEocdSize = 22, kLocatorSize = 20, kZip64EocdSize = 56;
constexpr uint64_t kCentralSize = 46, kLocalSize = 30;
constexpr uint32_t kMax32 = 0xFFFFFFFFu;
constexpr uint64_t kDeflateMaxRatio = 1032;  // deflate cannot expand more than this
constexpr uint64_t kChunk = 1u << 30;        // zlib counts in 32-bit uInt

std::string str(uint64_t v) { return std::to_string(v); }

/// Where the central directory is, from the (ZIP64) end records.
struct Directory {
  uint64_t entries = 0, offset = 0, size = 0;
  uint64_t limit = 0;  ///< file offset where the end records begin
};

class Parser {
 public:
  explicit Parser(const MappedFile& f) : f_(f), p_(f.data()), size_(f.size()) {}

  std::vector<ZipMember> run() {
    const Directory d = directory(find_eocd());
    std::vector<ZipMember> members;
    uint64_t pos = d.offset;
    const uint64_t end = d.offset + d.size;
    for (uint64_t i = 0; i < d.entries; ++i) members.push_back(central_entry(i, &pos, end));
    for (auto& m : members) locate_data(&m, d.offset);
    check_unique_and_disjoint(members);
    return members;
  }

 private:
  [[noreturn]] void bad(const std::string& reason) const { throw InputError(f_.path(), "", reason); }

  uint64_t find_eocd() const {
    if (size_ < kEocdSize)
      bad("file is " + str(size_) + " bytes, too short to be a ZIP archive");
    const uint64_t lowest = size_ - kEocdSize > 0xFFFF ? size_ - kEocdSize - 0xFFFF : 0;
    for (uint64_t pos = size_ - kEocdSize + 1; pos-- > lowest;)
      if (load_le32(p_ + pos) == kEocdSig && pos + kEocdSize + load_le16(p_ + pos + 20) == size_)
        return pos;
    bad("no ZIP end-of-central-directory record found (not a ZIP archive, or truncated)");
  }

  Directory directory(uint64_t eocd) const {
    const uint8_t* e = p_ + eocd;
    uint64_t disk = load_le16(e + 4), cd_disk = load_le16(e + 6);
    uint64_t on_disk = load_le16(e + 8);
    Directory d{load_le16(e + 10), load_le32(e + 16), load_le32(e + 12), eocd};
    if (eocd >= kLocatorSize && load_le32(p_ + eocd - kLocatorSize) == kZip64LocatorSig) {
      const uint8_t* loc = p_ + eocd - kLocatorSize;
      const uint64_t rec = load_le64(loc + 8);
      if (load_le32(loc + 4) != 0 || load_le32(loc + 16) > 1) bad("multi-disk ZIP archives are not supported");
      if (eocd - kLocatorSize < kZip64EocdSize || rec > eocd - kLocatorSize - kZip64EocdSize)
        bad("ZIP64 end-of-central-directory offset " + str(rec) + " is out of range");
      const uint8_t* z = p_ + rec;
      if (load_le32(z) != kZip64EocdSig) bad("no ZIP64 end-of-central-directory record at offset " + str(rec));
      disk = load_le32(z + 16);
      cd_disk = load_le32(z + 20);
      on_disk = load_le64(z + 24);
      d = Directory{load_le64(z + 32), load_le64(z + 48), load_le64(z + 40), rec};
    }
    if (disk != 0 || cd_disk != 0 || on_disk != d.entries) bad("multi-disk ZIP archives are not supported");
    uint64_t end;
    if (!checked_add(d.offset, d.size, &end) || end > d.limit)
      bad("central directory at offset " + str(d.offset) + " with size " + str(d.size) +
          " runs past its end record at offset " + str(d.limit) + " (file is " + str(size_) + " bytes)");
    if (d.entries > d.size / kCentralSize)
      bad("central directory of " + str(d.size) + " bytes cannot hold the " + str(d.entries) + " entries it claims");
    return d;
  }

  /// Applies the ZIP64 extended-information extra field (id 0x0001) to the 32-bit sentinels.
  void apply_zip64_extra(const uint8_t* x, uint64_t len, ZipMember* m, uint64_t* disk) const {
    bool found = false;
    while (len >= 4) {
      const uint16_t id = load_le16(x), n = load_le16(x + 2);
      if (n > len - 4) bad("member '" + m->name + "' has a corrupt extra field");
      if (id == 0x0001) {
        found = true;
        const uint8_t* q = x + 4;
        uint64_t left = n;
        auto take = [&](uint64_t* field, uint64_t bytes) {
          if (left < bytes) bad("member '" + m->name + "' has a truncated ZIP64 extra field");
          *field = bytes == 8 ? load_le64(q) : load_le32(q);
          q += bytes;
          left -= bytes;
        };
        if (m->uncompressed_size == kMax32) take(&m->uncompressed_size, 8);
        if (m->compressed_size == kMax32) take(&m->compressed_size, 8);
        if (m->local_header_offset == kMax32) take(&m->local_header_offset, 8);
        if (*disk == 0xFFFF) take(disk, 4);
      }
      x += 4 + n;
      len -= 4 + n;
    }
    if (!found && (m->uncompressed_size == kMax32 || m->compressed_size == kMax32 ||
                   m->local_header_offset == kMax32))
      bad("member '" + m->name + "' uses ZIP64 sizes but has no ZIP64 extra field");
  }

  ZipMember central_entry(uint64_t index, uint64_t* pos, uint64_t end) const {
    if (end - *pos < kCentralSize) bad("central directory entry " + str(index) + " is truncated");
    const uint8_t* c = p_ + *pos;
    if (load_le32(c) != kCentralSig) bad("central directory entry " + str(index) + " has a bad signature");
    const uint64_t name_len = load_le16(c + 28), extra_len = load_le16(c + 30), comment_len = load_le16(c + 32);
    const uint64_t total = kCentralSize + name_len + extra_len + comment_len;
    if (total > end - *pos) bad("central directory entry " + str(index) + " runs past the directory");
    ZipMember m;
    m.name.assign(reinterpret_cast<const char*>(c + kCentralSize), name_len);
    m.flags = load_le16(c + 8);
    m.method = load_le16(c + 10);
    m.crc32 = load_le32(c + 16);
    m.compressed_size = load_le32(c + 20);
    m.uncompressed_size = load_le32(c + 24);
    m.local_header_offset = load_le32(c + 42);
    uint64_t disk = load_le16(c + 34);
    apply_zip64_extra(c + kCentralSize + name_len, extra_len, &m, &disk);
    if (disk != 0) bad("member '" + m.name + "' lives on another disk (multi-disk archive)");
    check_member(m);
    *pos += total;
    return m;
  }

  void check_member(const ZipMember& m) const {
    const std::string who = "member '" + m.name + "'";
    const std::string problem = relative_path_problem(m.name);
    if (!problem.empty()) bad(who + ": name " + problem);
    if ((m.flags & 0x41) != 0 || m.method == 99) bad(who + " is encrypted");
    if (m.method != 0 && m.method != 8)
      bad(who + " uses compression method " + str(m.method) + "; only stored (0) and deflate (8) are supported");
    if (m.method == 0 && m.compressed_size != m.uncompressed_size)
      bad(who + " is stored but declares " + str(m.compressed_size) + " compressed and " +
          str(m.uncompressed_size) + " uncompressed bytes");
    if (m.method == 8 && m.uncompressed_size / kDeflateMaxRatio > m.compressed_size)
      bad(who + " declares " + str(m.uncompressed_size) + " bytes inflated from " + str(m.compressed_size) +
          ", more than deflate can produce");
  }

  /// Reads the local header and sets data_offset; the data must end before the directory.
  void locate_data(ZipMember* m, uint64_t cd_offset) const {
    const std::string who = "member '" + m->name + "'";
    if (m->local_header_offset > cd_offset || cd_offset - m->local_header_offset < kLocalSize)
      bad(who + ": local header offset " + str(m->local_header_offset) + " is out of range");
    const uint8_t* l = p_ + m->local_header_offset;
    if (load_le32(l) != kLocalSig) bad(who + ": bad local header signature");
    const uint64_t name_len = load_le16(l + 26), extra_len = load_le16(l + 28);
    const uint64_t data = m->local_header_offset + kLocalSize + name_len + extra_len;  // no overflow: < 2^64
    uint64_t data_end;
    if (data > cd_offset || !checked_add(data, m->compressed_size, &data_end) || data_end > cd_offset)
      bad(who + ": data of " + str(m->compressed_size) + " bytes at offset " + str(data) +
          " runs past the central directory at offset " + str(cd_offset));
    if (name_len != m->name.size() || std::memcmp(l + kLocalSize, m->name.data(), name_len) != 0)
      bad(who + ": local header names a different file");
    m->data_offset = data;
  }

  void check_unique_and_disjoint(const std::vector<ZipMember>& members) const {
    std::unordered_set<std::string> names;
    for (const auto& m : members)
      if (!names.insert(m.name).second) bad("duplicate member '" + m.name + "'");
    std::vector<const ZipMember*> order;
    for (const auto& m : members) order.push_back(&m);
    std::sort(order.begin(), order.end(), [](const ZipMember* a, const ZipMember* b) {
      return a->local_header_offset < b->local_header_offset;
    });
    for (size_t i = 1; i < order.size(); ++i)
      if (order[i - 1]->data_offset + order[i - 1]->compressed_size > order[i]->local_header_offset)
        bad("members '" + order[i - 1]->name + "' and '" + order[i]->name + "' overlap");
  }

  const MappedFile& f_;
  const uint8_t* p_;
  uint64_t size_;
};

/// RAII raw-deflate inflater.
struct Inflater {
  z_stream zs{};
  Inflater() {
    if (inflateInit2(&zs, -MAX_WBITS) != Z_OK) throw Error("zlib inflateInit2 failed");
  }
  ~Inflater() { inflateEnd(&zs); }
};

uint32_t crc_of(const uint8_t* p, uint64_t n) {
  uLong crc = crc32(0L, Z_NULL, 0);
  for (uint64_t done = 0; done < n;) {
    const uint64_t step = std::min(n - done, kChunk);
    crc = crc32(crc, p + done, static_cast<uInt>(step));
    done += step;
  }
  return static_cast<uint32_t>(crc);
}

std::vector<uint8_t> allocate(const std::string& file, const ZipMember& m, uint64_t n) {
  // Before the zero-filled buffer exists: a member may declare up to 1032 times its size.
  admit_allocation(n, file, "", "member '" + m.name + "' inflated");
  try {
    return std::vector<uint8_t>(n);
  } catch (const std::bad_alloc&) {
    throw InputError(file, "", "member '" + m.name + "': cannot allocate " + str(n) + " bytes");
  } catch (const std::length_error&) {
    throw InputError(file, "", "member '" + m.name + "': cannot allocate " + str(n) + " bytes");
  }
}

/// Inflates the member's deflate stream into out[0, want). With `exact`, the stream must end
/// after exactly `want` bytes (== uncompressed_size) having consumed all compressed bytes.
void inflate_member(const std::string& file, const ZipMember& m, const uint8_t* src, uint8_t* out,
                    uint64_t want, bool exact) {
  const auto bad = [&](const std::string& why) { throw InputError(file, "", "member '" + m.name + "': " + why); };
  Inflater inf;
  z_stream& zs = inf.zs;
  uint64_t in_left = m.compressed_size, done = 0;
  uint8_t scratch = 0;
  bool probing = false;  // output is full; any further byte means the declared size lies
  for (;;) {
    if (zs.avail_in == 0 && in_left > 0) {
      const uint64_t n = std::min(in_left, kChunk);
      zs.next_in = const_cast<Bytef*>(src);  // zlib's API is not const-correct
      zs.avail_in = static_cast<uInt>(n);
      src += n;
      in_left -= n;
    }
    if (zs.avail_out == 0 && !probing) {
      if (done == want && !exact) return;
      probing = done == want;
      zs.next_out = probing ? &scratch : out + done;
      zs.avail_out = probing ? 1u : static_cast<uInt>(std::min(want - done, kChunk));
    }
    const uInt room = zs.avail_out;
    const int ret = inflate(&zs, Z_NO_FLUSH);
    if (probing && zs.avail_out != room) bad("inflates to more than the declared " + str(want) + " bytes");
    if (!probing) done += room - zs.avail_out;
    if (ret == Z_STREAM_END) {
      if (done != want) bad("inflates to " + str(done) + " bytes, not the declared " + str(m.uncompressed_size));
      if (exact && (zs.avail_in != 0 || in_left != 0))
        bad("deflate stream ends before its declared " + str(m.compressed_size) + " compressed bytes");
      return;
    }
    if (ret == Z_BUF_ERROR && zs.avail_in == 0 && in_left == 0)
      bad("deflate stream is truncated after " + str(done) + " of " + str(m.uncompressed_size) + " bytes");
    if (ret != Z_OK && ret != Z_BUF_ERROR)
      bad(std::string("corrupted deflate stream: ") + (zs.msg ? zs.msg : "zlib error " + std::to_string(ret)));
  }
}

}  // namespace

bool has_zip_magic(const uint8_t* bytes, uint64_t size) {
  return size >= 4 && load_le32(bytes) == kLocalSig;
}

ZipArchive::ZipArchive(const std::string& path) : ZipArchive(MappedFile::open(path)) {}

ZipArchive::ZipArchive(std::shared_ptr<const MappedFile> file) : file_(std::move(file)) {
  MUSPEC_ASSERT(file_ != nullptr);
  members_ = Parser(*file_).run();
  index_.reserve(members_.size());
  for (size_t i = 0; i < members_.size(); ++i) index_.emplace(members_[i].name, i);
}

const ZipMember* ZipArchive::find(const std::string& name) const {
  const auto it = index_.find(name);
  return it == index_.end() ? nullptr : &members_[it->second];
}

ByteSpan ZipArchive::view_stored(const ZipMember& m) const {
  if (m.method != 0)
    throw InputError(path(), "", "member '" + m.name + "' is compressed and cannot be viewed in place");
  return ByteSpan{file_->data() + m.data_offset, m.compressed_size};
}

std::vector<uint8_t> ZipArchive::read(const ZipMember& m) const {
  std::vector<uint8_t> out = allocate(path(), m, m.uncompressed_size);
  const uint8_t* src = file_->data() + m.data_offset;
  if (m.method == 0) {
    if (!out.empty()) std::memcpy(out.data(), src, out.size());
  } else {
    inflate_member(path(), m, src, out.data(), out.size(), true);
  }
  const uint32_t crc = crc_of(out.data(), out.size());
  if (crc != m.crc32)
    throw InputError(path(), "", "member '" + m.name + "': CRC-32 mismatch (computed " + str(crc) +
                                     ", declared " + str(m.crc32) + ")");
  return out;
}

std::vector<uint8_t> ZipArchive::read_prefix(const ZipMember& m, uint64_t max_bytes) const {
  const uint64_t n = std::min(max_bytes, m.uncompressed_size);
  std::vector<uint8_t> out = allocate(path(), m, n);
  const uint8_t* src = file_->data() + m.data_offset;
  if (m.method == 0) {
    if (n > 0) std::memcpy(out.data(), src, n);
  } else {
    inflate_member(path(), m, src, out.data(), n, n == m.uncompressed_size);
  }
  return out;
}

}  // namespace muspec
