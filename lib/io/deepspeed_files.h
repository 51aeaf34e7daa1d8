// The files of a DeepSpeed ZeRO tag directory, by name (engine.py _get_ckpt_name,
// _get_zero_ckpt_name; checkpoint/constants.py). Internal to io/deepspeed*.cpp.
#pragma once

#include <string>
#include <vector>

namespace muspec::deepspeed {

/// The files of one tag directory.
struct TagFiles {
  std::string dir;
  std::string model_states;        ///< the file whose param_shapes are read (rank 0's)
  std::string optim_prefix;        ///< "", "bf16_" or "fp16_"
  std::vector<std::string> optim;  ///< optimizer-state file of rank r at r ("" where none is present)
};

/// Lists `dir`. Throws InputError(dir or the offending file, "", why) when there is no rank-0
/// model-states file, no optimizer-state file, tensor-parallel files (mp_rank other than 00),
/// or optimizer files under two prefixes.
TagFiles list_tag_dir(const std::string& dir);

/// The tag directory a user path stands for: the directory named by a `latest` file in `path`,
/// `path` itself when it is a directory, else the directory holding the file `path`.
std::string tag_dir_of(const std::string& path);

/// The expected name of rank r's optimizer-state file.
std::string optim_file_name(const std::string& prefix, size_t rank);

}  // namespace muspec::deepspeed
