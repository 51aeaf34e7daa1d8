// Turning the paths a user typed into the list of tensor files to read.
#pragma once

#include <string>
#include <vector>

namespace muspec {

struct DiscoveredFiles {
  std::vector<std::string> files;      ///< tensor files (or sharded indexes), sorted, no duplicates
  std::vector<std::string> problems;   ///< "PATH: does not exist" and similar, one per bad path
};

/// Files are taken as given. Directories are walked recursively (symlinked directories are
/// not followed) for names that is_tensor_file_name() accepts; a `*.safetensors.index.json`
/// in a directory replaces the shards it names, so each tensor is listed once.
DiscoveredFiles discover_tensor_files(const std::vector<std::string>& paths);

}  // namespace muspec
