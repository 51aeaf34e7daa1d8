#include "io/npz.h"
#include "io/page_release.h"

#include <algorithm>

#include "core/error.h"
#include "io/npy.h"
#include "io/zip.h"

namespace muspec {

namespace {

constexpr char kSuffix[] = ".npy";
constexpr size_t kSuffixLen = 4;

bool is_npy_member(const std::string& name) {
  return name.size() > kSuffixLen && name.compare(name.size() - kSuffixLen, kSuffixLen, kSuffix) == 0;
}

class NpzFile : public TensorSource {
 public:
  explicit NpzFile(const std::string& path) : path_(path), zip_(path) {
    for (const ZipMember& m : zip_.members()) {
      if (!is_npy_member(m.name)) continue;
      const std::string name = m.name.substr(0, m.name.size() - kSuffixLen);
      NpyHeader h = read_header(m, name);
      if (h.data_offset > m.uncompressed_size)
        throw InputError(path_, name, ".npy header runs past the end of the member");
      const uint64_t data_size = m.uncompressed_size - h.data_offset;
      check_npy_data_size(h, data_size, path_, name);
      entries_.push_back(npy_entry(h, name, path_, data_size));
      members_.push_back(Member{&m, std::move(h)});
    }
  }

  const std::string& path() const override { return path_; }
  const std::vector<TensorEntry>& entries() const override { return entries_; }

  TensorHandle load(size_t index) const override {
    if (index >= entries_.size())
      throw UsageError("tensor index " + std::to_string(index) + " out of range for " + path_);
    const Member& mem = members_[index];
    const std::string& name = entries_[index].name;
    TensorHandle h;
    if (mem.zip->method == 0) {
      const ByteSpan span = zip_.view_stored(*mem.zip);
      h.view = npy_view(mem.header, span.data + mem.header.data_offset, span.size - mem.header.data_offset,
                        path_, name);
      h.keepalive = keep_mapped_range(zip_.file(), h.view.data, entries_[index].nbytes);
    } else {
      auto bytes = std::make_shared<const std::vector<uint8_t>>(zip_.read(*mem.zip));
      h.view = npy_view(mem.header, bytes->data() + mem.header.data_offset,
                        bytes->size() - mem.header.data_offset, path_, name);
      h.keepalive = bytes;
    }
    return h;
  }

 private:
  struct Member {
    const ZipMember* zip;  ///< points into zip_.members(), which never changes
    NpyHeader header;
  };

  /// Parses a member's .npy header: in place when stored, from an inflated prefix otherwise.
  NpyHeader read_header(const ZipMember& m, const std::string& name) const {
    if (m.method == 0) {
      const ByteSpan span = zip_.view_stored(m);
      return parse_npy_header(span.data, span.size, path_, name);
    }
    const std::vector<uint8_t> prefix = zip_.read_prefix(m, kNpyMaxPreambleBytes + kNpyMaxHeaderBytes);
    return parse_npy_header(prefix.data(), prefix.size(), path_, name);
  }

  std::string path_;
  ZipArchive zip_;
  std::vector<TensorEntry> entries_;
  std::vector<Member> members_;
};

}  // namespace

std::unique_ptr<TensorSource> open_npz(const std::string& path) {
  return std::make_unique<NpzFile>(path);
}

}  // namespace muspec
