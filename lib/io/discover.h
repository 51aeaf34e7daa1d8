// Turning the paths a user typed into the list of tensor files to read.
#pragma once

#include <string>
#include <vector>

namespace muspec {

struct DiscoveredFiles {
  std::vector<std::string> files;      ///< tensor files (or sharded indexes), sorted, no duplicates
  std::vector<std::string> problems;   ///< "PATH: does not exist" and similar, one per bad path
  std::vector<std::string> ignored;    ///< "PATH: is a FIFO, not a regular file": special entries met in a directory
};

/// Files are taken as given, unless they are not regular files (a FIFO, socket or device is a
/// problem, refused by type without being opened). Directories are walked recursively
/// (symlinked directories are not followed) for names that is_tensor_file_name() accepts; a
/// `*.safetensors.index.json` in a directory replaces the shards it names, so each tensor is
/// listed once. A PyTorch Distributed Checkpoint directory (`.metadata` beside `*.distcp`) is
/// listed as its `.metadata` (Megatron's `common.pt` beside it is part of it); shards without
/// their `.metadata` are a problem. In a directory, a tensor-named entry that is not a regular file (a FIFO, a
/// socket, a device, a broken symlink) is a problem; other such entries are listed as ignored,
/// so that nothing is passed over without a word.
DiscoveredFiles discover_tensor_files(const std::vector<std::string>& paths);

}  // namespace muspec
