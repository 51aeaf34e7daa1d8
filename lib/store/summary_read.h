// Internal to lib/store: the spectra store's fast read path through its /summary columns.
//
// Reading a store record by record costs ~45 HDF5 attribute reads per record (~0.3-0.5 ms;
// 10,000 records took seconds, twice over with the isolated probe). A store written by this
// version also marks its /summary group as complete (attribute `record_columns` = 1, plus the
// quantile levels in column order): its columns then hold every field of every analysed
// record, and the reader takes them in one read per column, plus each record's sigma dataset
// when sigma is wanted. Unanalysed rows are read attribute by attribute, as before.
//
// The columns are untrusted input like the rest of the file: a missing or mistyped column, a
// length other than the number of records, a bool other than 0/1, an unparsable tensor_shape,
// an analysed row without sigma, or a record that breaks spectrum_record_problem makes the
// fast path give up (nullopt); the caller then reads record by record, which yields exactly
// the records (or the error) the old reader gave. Not a public header (includes hdf5.h).
#pragma once

#include <hdf5.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "spectra/record.h"

namespace muspec::store_detail {

/// Name of record i's dataset in /spectra ("000003").
std::string record_dataset_name(uint64_t i);
/// Shortest decimal text that reads back as q: the quantile column names ("q0.5_sigma").
std::string quantile_level_text(double q);
/// One record from its dataset's attributes and data (the per-record path); throws h5::Failure.
SpectrumRecord read_record_attributes(hid_t dset);

/// Writer: the columns the fast path needs beyond the CSV's (`transposed`, `tensor_shape`) and,
/// when the columns describe every analysed record exactly, the completeness marker. `levels`
/// are the quantile levels of the q<level>_* columns, in column order.
void write_record_columns(hid_t summary_group, const std::vector<SpectrumRecord>& records,
                          const std::vector<double>& levels);

/// Reader: the `count` records from /summary (and sigma from /spectra when `with_sigma`), or
/// nullopt when the store has no complete /summary or any check fails (see above). Without sigma,
/// analysed records come back with an empty sigma and everything else filled in.
std::optional<std::vector<SpectrumRecord>> read_records_from_summary(hid_t root, hid_t spectra, uint64_t count,
                                                                      bool with_sigma);

/// How many column reads of complete /summary tables have failed in this process (tests check
/// that a store whose columns are damaged is read around without running the failing read here).
uint64_t column_read_failures();

/// "4x1024x1024" (empty for an empty shape), and back; parse throws h5::Failure on bad text.
std::string tensor_shape_text(const std::vector<int64_t>& shape);
std::vector<int64_t> parse_tensor_shape(const std::string& text);

}  // namespace muspec::store_detail
