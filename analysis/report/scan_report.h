// Scan reports: the per-matrix CSV and JSON summaries, and the table printed on stdout.
// The column and key names are documented in docs/scan-output.md.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "spectra/record.h"

namespace muspec {

/// A CSV number cell: %.17g, or inf / -inf / nan (pandas reads them as floats).
std::string csv_number(double v);
/// A CSV text cell, quoted (RFC 4180) when it holds a comma, quote or line break.
std::string csv_quote(const std::string& s);

/// `v` formatted by a printf format with one double conversion (e.g. "%.3f"): the number
/// format of tables, captions and figures.
std::string format_number(const char* printf_format, double v);
/// "[lo, hi]" with both ends in `printf_format`.
std::string format_interval(const char* printf_format, double lo, double hi);

/// "0.05" for 0.05, "0.5" for 0.5: the spelling of a quantile level in column and key names.
std::string quantile_label(double q);

/// One CSV row per record, header first. Non-finite numbers are written as inf / -inf / nan
/// (pandas reads them as floats); unanalysed matrices have empty numeric cells.
std::string summary_csv(const std::vector<SpectrumRecord>& records, const std::vector<double>& quantiles);

/// One JSON object per record, inside {"muspec_version", "matrices": [...]}. JSON cannot hold
/// inf or NaN: such values are null (cond is null exactly when sigma_min is 0).
nlohmann::json summary_json(const std::vector<SpectrumRecord>& records, const std::vector<double>& quantiles);

/// A fixed-width table for a terminal: name, shape, dtype, sigma_max, cond, stable and
/// effective rank, and sigma/||X||_F at the lowest requested quantile.
/// At most `max_rows` rows (0 = all), then a line saying how many were left out.
std::string summary_table(const std::vector<SpectrumRecord>& records, const std::vector<double>& quantiles,
                          size_t max_rows = 0);

}  // namespace muspec
