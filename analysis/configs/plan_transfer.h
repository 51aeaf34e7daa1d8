// Transfer of a `muspec plan` allocation to a model of another depth (`plan --transfer-layers`,
// docs/ns-config.md "Transferring a plan to a larger model").
//
// The plan assigns each matrix of the measured (small) model a step count. A larger model has
// other parameter names (more blocks), so the plan is rewritten as name patterns keyed by
// (operator type, relative-depth bucket), like `recommend --laws`: bucket i of N covers relative
// depths [i/N, (i+1)/N) (the last one closed), relative depth = block / (blocks − 1), the same
// buckets as `fit --group optype,depth:N`. Within a bucket the most conservative planned entry
// wins: the MOST steps of its matrices (ties: the entry planned for the smaller lower bound),
// and the pattern's lower bound is the bucket's smallest. Every block of the target model then
// gets the entry of the bucket its relative depth falls in.
#pragma once

#include <string>
#include <vector>

#include "model/model_config.h"
#include "configs/ns_config.h"

namespace muspec {

struct PlanTransfer {
  int depth_buckets = 4;        ///< N relative-depth buckets, 1 to 64
  int source_layers = 0;        ///< blocks of the measured model (> 0)
  int target_layers = 0;        ///< blocks of the model the patterns are for; 0 = from model_config
  std::string naming;           ///< naming family of the patterns; "" = model config's, else llama
  std::string model_config;     ///< optional config.json of the target: blocks, shapes, family
};

/// One (op type, bucket) entry of the measured plan: the setting every block in it receives.
struct BucketEntry {
  std::string op_type, group;   ///< group: "q/depth:0-0.25"
  double depth_lo = 0, depth_hi = 1;
  NsConfigEntry entry;          ///< the conservative setting, smallest lower bound of the bucket
  std::vector<std::string> members;  ///< measured parameters aggregated
};

/// The buckets of a plan config's parameters (op types in display order, buckets ascending).
/// Parameters outside the blocks (layer < 0) are left out. Throws UsageError for a bad count.
std::vector<BucketEntry> plan_buckets(const NsConfig& plan, int depth_buckets, int source_layers);

/// Rewrites `plan` for the target model: `parameters` are replaced by `patterns` (consecutive
/// blocks from one bucket share a pattern), `target` and `plan.transfer` are recorded. Target
/// blocks whose bucket holds no measured matrix (a shallow source with many buckets), and op
/// types the naming family has no in-block name for, are listed in `uncovered` (the default
/// setting applies to them). Throws UsageError when the target depth or family is unusable.
void transfer_plan(NsConfig& plan, const PlanTransfer& t, std::vector<std::string>* uncovered = nullptr);

}  // namespace muspec
