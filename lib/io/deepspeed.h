// DeepSpeed ZeRO checkpoints (stages 1, 2 and 3, and the BF16 optimizer): the fp32 master
// weights and the optimizer state (exp_avg, exp_avg_sq, Muon's momentum_buffer) of every
// trainable parameter, reassembled from the per-rank flat partitions without Python.
//
// A checkpoint is a tag directory (`global_step100/`, named by the `latest` file beside it):
//   mp_rank_00_model_states.pt                      ZeRO-1/2: param_shapes, module, ...
//   zero_pp_rank_<r>_mp_rank_00_model_states.pt     ZeRO-3: one per rank (rank 0's is read)
//   [bf16_]zero_pp_rank_<r>_mp_rank_00_optim_states.pt   one per data-parallel rank r
// The layouts are described in io/deepspeed_layout.h. Every pickle goes through the restricted
// reader: DeepSpeed's classes (LossScaler, ZeroStageEnum, fragment_address, ...) stay inert.
//
// The source's entries are the logical tensors, named as FQN-keyed optimizer state is named
// elsewhere: "<param>" for the fp32 master weight (param_shapes' names) and
// "optimizer.state.<param>.<key>" for each state. Each load() reads only the parameter's
// pieces (views into the mapped files) and copies them into one buffer of its size.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "io/tensor_source.h"

namespace muspec {

/// True when `path` is the model-states file that stands for a whole ZeRO checkpoint:
/// `mp_rank_00_model_states.pt` or `zero_pp_rank_0_mp_rank_00_model_states.pt` in a directory
/// that also holds `*zero_pp_rank_*_optim_states.pt` files.
bool is_deepspeed_checkpoint_file(const std::string& path);

/// Opens the ZeRO checkpoint that `path` stands for: that model-states file, a tag directory,
/// or a directory whose `latest` file names the tag. Throws InputError naming the file (a
/// missing rank, a file that is not a ZeRO optimizer state, tensor parallelism) for anything
/// that makes the whole checkpoint unreadable; a parameter the partitions do not hold fails
/// only its own load(), with an InputError naming the partition's file and the tensor.
std::unique_ptr<TensorSource> open_deepspeed_checkpoint(const std::string& path);

/// Discovery: replaces the model-states and optimizer-state files of each ZeRO tag directory
/// among `files` by the one path that stands for the checkpoint (see
/// is_deepspeed_checkpoint_file()). Other files are left as they are.
void group_deepspeed_checkpoints(std::vector<std::string>& files);

/// For a file named `latest` in a walked directory: "" when it names an existing tag
/// directory beside it (or is not DeepSpeed's), else why not.
std::string deepspeed_latest_problem(const std::string& latest_file);

}  // namespace muspec
