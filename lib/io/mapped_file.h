// Read-only memory maps of whole files: the byte source of every tensor reader.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace muspec {

/// A whole regular file mapped read-only (PROT_READ, MAP_PRIVATE) for the object's lifetime.
///
/// `data()` points at byte 0 and `size()` bytes are readable; a 0-byte file has size() == 0
/// and a non-null data() that must not be dereferenced. Readers share a MappedFile through
/// std::shared_ptr so that a TensorHandle can keep the mapping alive after its source is gone.
/// The mapping is immutable, so concurrent reads from several threads are safe.
class MappedFile {
 public:
  /// Maps `path`. Throws InputError(path, "", reason) naming the failing system call and the
  /// errno text (missing file, permission, ...); a directory, FIFO, socket or device is
  /// refused by type before it is opened (see core/regular_file.h), so nothing blocks.
  explicit MappedFile(std::string path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  /// Convenience: `std::make_shared<const MappedFile>(path)`.
  static std::shared_ptr<const MappedFile> open(const std::string& path);
  /// Bytes [offset, offset + length) of `parent`, seen as a file of their own called `label`
  /// (a chunk inside a DCP `.distcp` file). Keeps `parent` alive. Throws UsageError when the
  /// range does not lie inside `parent` (callers check untrusted ranges first).
  static std::shared_ptr<const MappedFile> view(std::shared_ptr<const MappedFile> parent, uint64_t offset,
                                                uint64_t length, std::string label);
  /// Bytes produced in memory (a decompressed chunk), seen as a file called `label`.
  static std::shared_ptr<const MappedFile> from_bytes(std::vector<uint8_t> bytes, std::string label);

  const std::string& path() const { return path_; }
  /// True when the bytes are a file's mapping (or a view of one), whose pages can be dropped and
  /// read again from the page cache; false for from_bytes(), whose pages hold the only copy.
  bool file_backed() const { return parent_ ? parent_->file_backed() : !in_memory_; }
  const uint8_t* data() const { return data_; }
  uint64_t size() const { return size_; }
  /// SIGBUS faults taken on this mapping (the file shrank while it was read; see
  /// io/bus_guard.h): the bytes read since the fault are zeros, not the file's.
  uint64_t faults() const;

 private:
  MappedFile() = default;  // view() and from_bytes()
  std::shared_ptr<const MappedFile> parent_;  ///< view(): the mapping the bytes belong to
  std::vector<uint8_t> owned_;                ///< from_bytes(): the bytes themselves
  bool in_memory_ = false;                    ///< made by from_bytes()
  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  void* mapping_ = nullptr;  ///< what munmap() needs; null for an empty file
  int64_t guard_slot_ = -1;  ///< registration with the SIGBUS guard (io/bus_guard.h)
};

/// Empty when `name` is a safe relative path (for a shard named in an index or a ZIP member):
/// otherwise why not: empty, contains a NUL byte, absolute ('/' or a backslash first, or a drive letter
/// "C:"), or has a ".." component (with '/' or backslash as separators).
std::string relative_path_problem(const std::string& name);

/// Little-endian loads from untrusted bytes (unaligned-safe). The caller has already checked
/// that the 2, 4 or 8 bytes at `p` lie inside its buffer.
inline uint16_t load_le16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
inline uint32_t load_le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) | (static_cast<uint32_t>(p[3]) << 24);
}
inline uint64_t load_le64(const uint8_t* p) {
  return static_cast<uint64_t>(load_le32(p)) | (static_cast<uint64_t>(load_le32(p + 4)) << 32);
}

}  // namespace muspec
