// The records of a spectra.h5 as the isolated reader's child sends them back (store/isolated_read.h):
// one header message, then one message per record, in record order. Little-endian
// (core/byte_codec.h):
//
//   header = "MUSPECS1", u32 n_attributes, (string key, string value) * n_attributes,
//            i64 n_records, u32 n_scan_order, i64 * n_scan_order
//   record = spectra/record_codec.h with the layer metrics
//
// The receiver treats the bytes as untrusted (the child ran libhdf5 on a crafted file and may
// have been steered by it): every length is checked, every record held to the rules of a record
// read from a store (read_record_problem), the count and the order of messages to the header. Private to lib/store.
#pragma once

#include <functional>
#include <string>

#include "store/spectra_store.h"

namespace muspec {

/// The child's side: sends `file` as the messages above, through `send`.
void send_spectra_file(const SpectraFile& file, const std::function<void(const std::string&)>& send);

/// This process's side: takes the messages in order and rebuilds the SpectraFile.
class SpectraFileReceiver {
 public:
  /// `path`: the store, for messages; `sigma_read`: SpectraReadOptions::sigma of the read.
  SpectraFileReceiver(std::string path, bool sigma_read) : path_(std::move(path)), sigma_read_(sigma_read) {}
  /// Throws InputError(path, "", "... sent a damaged ...: <what>") on bytes that do not decode,
  /// a record that breaks the store's rules, or more records than the header announced.
  void take(std::string&& message);
  /// The file; throws InputError when the header or some records never came.
  SpectraFile finish();

 private:
  [[noreturn]] void damaged(const std::string& what) const;
  std::string path_;
  bool sigma_read_;
  SpectraFile file_;
  bool have_header_ = false;
  int64_t expected_ = 0;
};

}  // namespace muspec
