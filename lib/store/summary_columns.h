// Reads optional numeric columns of a spectra store's /summary group by name (e.g. the
// WeightWatcher layer metrics "alpha", "log_norm", ... that newer stores carry). Used by
// `muspec report`, which shows such columns when a store has them and omits them otherwise.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace muspec {

/// For each name in `names` that /summary/<name> holds as a 1-D float or integer dataset of
/// exactly `rows` values: name -> values (integers converted to double). Names absent from the
/// file are left out; a present column of another type or length is left out too (the report
/// must not fail on a column it only displays). Throws InputError naming the file when it
/// cannot be opened as HDF5.
std::map<std::string, std::vector<double>> read_summary_columns(const std::string& path,
                                                               const std::vector<std::string>& names,
                                                               size_t rows);

}  // namespace muspec
