// Grouping matrices across model sizes: which matrices of a small model and of a large one
// obey the same power law. See docs/scaling-laws.md "Grouping".
//
// --group specs (comma-separated parts):
//   optype,depth:4        operator type x relative-depth quarter (default)
//   optype                operator type only
//   depth:N               N relative-depth buckets, any operator type
//   layer-from-end:N      the last N blocks individually (others are not grouped);
//                         with optype: per operator type in each of those blocks
//   FILE.json             a group file: {"format": "muspec.groups", "version": 1,
//                         "groups": [{"name": "...", "op_type": "q" or "" (any),
//                                     "depth": [lo, hi], "layer_from_end": k or -1}, ...]}
// Built-in groupings partition the matrices they cover; groups of a file may overlap (a matrix
// then counts in every group it matches).
#pragma once

#include <map>
#include <string>
#include <vector>

#include "laws/laws.h"
#include "spectra/record.h"

namespace muspec::analysis {

/// Operator types in display order (q, k, v, qkv, o, gate, up, gate_up, down, then others
/// alphabetically), each listed once.
std::vector<std::string> ordered_op_types(const std::vector<std::string>& op_types);

/// Builds the groups of a --group spec. `op_types` are the operator types present in the data
/// (used by "optype"). Throws UsageError for a bad spec, InputError for a bad group file.
std::vector<GroupSelector> make_groups(const std::string& spec, const std::vector<std::string>& op_types);

/// Reads a group file (format above). Throws InputError naming the file and the field.
std::vector<GroupSelector> read_group_file(const std::string& path);

/// The label of a relative-depth range: "depth:0-0.25".
std::string depth_label(double lo, double hi);

/// Indices of the groups a record belongs to.
std::vector<size_t> groups_of(const std::vector<GroupSelector>& groups, const SpectrumRecord& record);

}  // namespace muspec::analysis
