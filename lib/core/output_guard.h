// Refusing outputs that would destroy an input: every output file is written by
// write-then-rename, which replaces whatever the output path names, so `scan x.safetensors
// -o x.safetensors` used to replace the checkpoint with HDF5 and exit 0. Each command lists
// its inputs and outputs and calls refuse_clobbering() before doing any work.
#pragma once

#include <functional>
#include <string>
#include <vector>

namespace muspec {

/// A path the user gave, with the option that gave it ("-o", "--summary", "input").
struct NamedPath {
  std::string option;
  std::string path;
};

/// True for a file name inside an input directory that the command would read.
using ReadsInside = std::function<bool(const std::string& path)>;

/// Throws UsageError naming both paths when an output (empty paths, inputs or outputs, are
/// skipped)
///  * is the same file as an input: the same resolved path (symlinks followed), or the same
///    (st_dev, st_ino) when both exist (a hard link, a symlink, a bind mount);
///  * lies inside an input directory and `reads_inside` says the command reads such a file;
///  * is the same file as another output.
void refuse_clobbering(const std::vector<NamedPath>& inputs, const std::vector<NamedPath>& outputs,
                       const ReadsInside& reads_inside = nullptr);

}  // namespace muspec
