// What the keys of a DCP checkpoint mean: which tensors are model weights, which are optimizer
// state of which parameter, and how Megatron's stacked layers split into one matrix per layer.
//
// Names given (the same for every trainer, so that labelling needs no recipe):
//   weights          the parameter's FQN: torchtitan's top-level keys as they are, accelerate's
//                    {"model": state_dict} without the "model" level
//   optimizer state  "optimizer.state.<fqn>.<state>": torchtitan/torch.distributed.checkpoint.
//                    state_dict keys as they are, accelerate's nested state, Megatron's
//                    "optimizer.state.<state>.<key>" reordered
//   Megatron stacks  "decoder.layers.self_attention.linear_qkv.weight" [L, out, in] becomes
//                    "decoder.layers.<l>.self_attention.linear_qkv.weight" [out, in] for each l
//                    (the same for its optimizer state)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "io/dcp_metadata.h"
#include "io/tensor_source.h"

namespace muspec {

/// One tensor muspec offers from a DCP checkpoint.
struct DcpEntryPlan {
  std::string name;           ///< muspec's name (see above)
  size_t tensor = 0;          ///< index into DcpMetadata::tensors
  int64_t layer = -1;         ///< >= 0: slice `layer` of dimension 0 of a stacked tensor
  std::string unsupported;    ///< non-empty: listed but not analysed, and why
};

struct DcpLayout {
  std::string trainer;        ///< "torchtitan/DCP", "accelerate FSDP", "Megatron torch_dist"
  std::vector<DcpEntryPlan> entries;
  std::vector<UnreadableTensor> unreadable;  ///< present but unreadable (Megatron's dp_reshardable flat buckets)
};

/// Names every tensor of `md`. `megatron` says the directory holds Megatron's metadata.json
/// (torch_dist); `directory` is the checkpoint directory's name (for accelerate's
/// pytorch_model_fsdp_N / optimizer_N).
DcpLayout plan_dcp_layout(const DcpMetadata& md, bool megatron, const std::string& directory);

/// The optimizer state kinds muspec analyses (the labeller's kinds: momentum_buffer, exp_avg,
/// exp_avg_sq, moment1, moment2).
bool is_analysed_state_key(const std::string& key);

}  // namespace muspec
