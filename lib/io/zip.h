// A minimal, strict, read-only ZIP reader over a memory map.
//
// Why hand-written: torch.save archives and .npz files store tensors as ZIP members, and muspec
// wants to view stored (method 0) members in place, zero-copy, at their exact offsets in the
// mmap. libzip and minizip hide those offsets behind stream APIs and are lenient about
// inconsistent archives; here every offset and length is bounds-checked with checked arithmetic
// before use. zlib is still used for the one compression method supported (deflate).
//
// Supported: the classic end-of-central-directory record, ZIP64 (locator, record and the 0x0001
// extra field), methods 0 (stored) and 8 (deflate), data descriptors (sizes are always taken
// from the central directory). Rejected at open: multi-disk archives, encrypted members, other
// methods, member names that are empty, absolute, contain '..' components or NUL bytes,
// duplicate names, local headers that disagree with the central directory, and members whose
// bytes overlap each other or the central directory.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "io/mapped_file.h"

namespace muspec {

/// One member of the archive, as described by its central-directory entry.
struct ZipMember {
  std::string name;                  ///< as stored (UTF-8 or CP437 bytes, not converted)
  uint16_t method = 0;               ///< 0 stored, 8 deflate
  uint16_t flags = 0;                ///< general-purpose bit flags
  uint32_t crc32 = 0;                ///< CRC-32 of the uncompressed bytes
  uint64_t compressed_size = 0;      ///< bytes at data_offset
  uint64_t uncompressed_size = 0;    ///< bytes after inflation (== compressed_size when stored)
  uint64_t local_header_offset = 0;  ///< file offset of the local header
  uint64_t data_offset = 0;          ///< file offset of the first data byte
};

/// A contiguous byte range inside a mapping (not owning).
struct ByteSpan {
  const uint8_t* data = nullptr;
  uint64_t size = 0;
};

/// An opened, fully validated archive. Immutable after construction, so every const method
/// may be called from several threads at once.
class ZipArchive {
 public:
  /// Maps and validates `path`. Throws InputError(path, "", reason).
  explicit ZipArchive(const std::string& path);
  /// Validates an already mapped file (shared with the caller).
  explicit ZipArchive(std::shared_ptr<const MappedFile> file);

  const std::string& path() const { return file_->path(); }
  /// The mapping; hold it to keep view_stored() spans alive.
  const std::shared_ptr<const MappedFile>& file() const { return file_; }
  /// Members in central-directory order.
  const std::vector<ZipMember>& members() const { return members_; }
  /// The member called `name`, or nullptr. Constant time: a torch.save archive looks up one
  /// member per storage record, and may hold 10^5 of them.
  const ZipMember* find(const std::string& name) const;

  /// The bytes of a stored member, in place in the mapping (zero copy; the CRC is NOT checked,
  /// so that multi-GB members are not read at open). Throws InputError for a deflated member.
  ByteSpan view_stored(const ZipMember& m) const;
  /// The uncompressed bytes of a member, copied or inflated into an owned buffer, exactly
  /// uncompressed_size bytes long, CRC-32 checked. Throws InputError naming the member if the
  /// deflate stream is corrupt, inflates to a different size, or the CRC does not match.
  std::vector<uint8_t> read(const ZipMember& m) const;
  /// At most the first `max_bytes` uncompressed bytes of a member (fewer only when the member
  /// is shorter). Inflates no more than needed; no CRC check (the stream is not finished).
  std::vector<uint8_t> read_prefix(const ZipMember& m, uint64_t max_bytes) const;

 private:
  void parse();
  std::shared_ptr<const MappedFile> file_;
  std::vector<ZipMember> members_;
  std::unordered_map<std::string, size_t> index_;  ///< name -> position in members_ (names are unique)
};

/// True when `bytes` (at least 4 of them) begin with a ZIP local-header signature "PK\3\4".
bool has_zip_magic(const uint8_t* bytes, uint64_t size);

}  // namespace muspec
