// Where each parameter's elements lie in DeepSpeed ZeRO's flat per-rank partitions: pure
// arithmetic over lengths (no file is read here), so that the rules can be tested and fuzzed
// on their own. Layouts, from DeepSpeed's sources (runtime/zero/stage_1_and_2.py, stage3.py,
// runtime/bf16_optimizer.py, utils/zero_to_fp32.py):
//
//  ZeRO-1/2 and the BF16 optimizer: per param group, the parameters in param_shapes order are
//    flattened back to back, padded at the end to a multiple of 2 × world, and cut into world
//    equal partitions. A rank's stored flat tensor is its partition, with or without its share
//    of the padding, so the group is the concatenation of the ranks' tensors in rank order.
//  ZeRO-1/2 Muon momentum_buffer: on each rank, the *whole* tensors of every parameter that
//    overlaps that rank's (padded) partition, back to back.
//  ZeRO-3: every parameter is padded to ceil(numel / world) × world elements and rank r holds
//    slice r; a rank's flat sub-groups, concatenated, hold its slices in param_shapes order.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace muspec::deepspeed {

/// One trainable parameter as param_shapes lists it.
struct ParamShape {
  std::string name;
  std::vector<int64_t> shape;
  int64_t numel = 0;
  size_t group = 0;  ///< index of its param group (ZeRO-1/2: of the rank's flat tensors)
};

/// Lengths of one kind of stored flat tensor (fp32 weights, exp_avg, ...): [rank][group];
/// kAbsent where that rank's file has no such tensor for that group.
using FlatLengths = std::vector<std::vector<int64_t>>;
inline constexpr int64_t kAbsent = -1;

/// Elements [start, start + length) of the flat tensor (rank, group) are elements
/// [at, at + length) of the flattened parameter.
struct FlatPiece {
  size_t rank = 0, group = 0;
  int64_t start = 0, length = 0, at = 0;
};

/// How to read one parameter, or why it cannot be read.
struct ParamPlan {
  std::vector<FlatPiece> pieces;  ///< cover the parameter exactly once when `problem` is empty
  std::string problem;            ///< non-empty: the layout does not hold this parameter
  int blame_rank = -1;            ///< the rank whose file is at fault; -1: param_shapes (the model states file)
  bool totals_differ = false;     ///< ZeRO-1/2: the group's partitions and param_shapes disagree on its size
};

/// ZeRO-1/2 (and BF16 optimizer) placement of every parameter for one kind whose flat
/// tensors have `lengths`. Checks: every rank has the tensor; partitions are equal except for
/// a shorter one followed only by empty ones; the total is what param_shapes need, up to the
/// 2 × world alignment padding (zero_to_fp32's rule). `params` is the concatenation of the
/// groups in param_shapes order.
std::vector<ParamPlan> plan_zero12(const std::vector<ParamShape>& params, const FlatLengths& lengths, int world);

/// ZeRO-1/2 placement of Muon's momentum_buffer (`momentum` lengths). `weights` are the fp32
/// partition lengths, which must match the padded partition size P = 2·ceil(numel/(2·world))
/// (or its unpadded share). A parameter is read whole from the first rank it overlaps.
std::vector<ParamPlan> plan_zero12_momentum(const std::vector<ParamShape>& params, const FlatLengths& momentum,
                                            const FlatLengths& weights, int world);

/// ZeRO-3 placement for one kind: `weights` are the fp32 flat sub-group lengths that fix where
/// each slice lies; `kind` the lengths of this kind's tensors (equal to `weights` per sub-group,
/// or kAbsent where the sub-group has no such state).
std::vector<ParamPlan> plan_zero3(const std::vector<ParamShape>& params, const FlatLengths& weights,
                                  const FlatLengths& kind, int world);

/// ZeRO-3: the sub-group of rank 0 that holds the first element of each parameter's slice
/// (-1 for an empty parameter or a layout too short to hold it).
std::vector<int64_t> zero3_first_group(const std::vector<ParamShape>& params, const FlatLengths& weights, int world);

}  // namespace muspec::deepspeed
