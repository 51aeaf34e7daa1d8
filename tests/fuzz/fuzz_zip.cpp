// libFuzzer target: the ZIP reader (ZipArchive over a mapped file). Every member is checked
// against the file (its bytes must lie inside it), read in full (inflated and CRC-checked) and
// by prefix, and viewed in place when stored. Expected failures are muspec::Error; anything
// else (crash, sanitizer report, other exception, hang, broken invariant) is a finding.
// Build and run: tests/fuzz/README.md.
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/zip.h"
#include "fuzz_common.h"

namespace {

using namespace muspec;

using namespace muspec_fuzz;  // finding, note, temp_path, write_file, touch_*: fuzz_common.h

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = temp_path(".zip");
  write_file(path, data, size);
  try {
    const ZipArchive zip(path);
    if (zip.file()->size() != size) finding("mapped size differs from the input size");
    for (const ZipMember& m : zip.members()) {
      // Everything the reader will touch must lie inside the file (the mapping hides small
      // overreads, so this is checked here, not left to ASan).
      uint64_t end = 0;
      if (m.data_offset < m.local_header_offset || !checked_add(m.data_offset, m.compressed_size, &end) || end > size)
        finding("member '" + m.name + "' data [" + std::to_string(m.data_offset) + ", +" + std::to_string(m.compressed_size) +
                ") lies outside the " + std::to_string(size) + "-byte file");
      if (m.method != 0 && m.method != 8) finding("member with method " + std::to_string(m.method) + " accepted");
      if (m.method == 0 && m.compressed_size != m.uncompressed_size) finding("stored member with two sizes accepted");
      if (zip.find(m.name) != &m) finding("find() does not return the member named '" + m.name + "'");
      try {
        const std::vector<uint8_t> prefix = zip.read_prefix(m, 64);
        if (prefix.size() != std::min<uint64_t>(64, m.uncompressed_size)) finding("read_prefix returned a wrong size");
        if (m.method == 0) {
          const ByteSpan span = zip.view_stored(m);
          if (span.data != zip.file()->data() + m.data_offset || span.size != m.compressed_size) finding("view_stored span mismatch");
          if (span.size && std::memcmp(span.data, data + m.data_offset, static_cast<size_t>(span.size)) != 0)
            finding("view_stored bytes differ from the file");
        }
        // No size cap: the reader bounds a deflated member's declared size by deflate's
        // maximum ratio, so an allocation past -rss_limit_mb would itself be a finding.
        const std::vector<uint8_t> all = zip.read(m);
        if (all.size() != m.uncompressed_size) finding("read() returned a wrong size");
        if (!prefix.empty() && std::memcmp(all.data(), prefix.data(), prefix.size()) != 0)
          finding("read_prefix and read disagree for '" + m.name + "'");
      } catch (const Error& e) {
        note(e.what());
      }
    }
  } catch (const Error& e) {
    note(e.what());
  }
  return 0;
}
