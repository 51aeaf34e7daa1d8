// The order in which a model's `named_parameters()` lists its parameters, rebuilt from the
// parameter names alone. Optimizer state dicts number parameters in that order (per param
// group), but weight files do not keep it: save_pretrained sorts safetensors by name. Each
// architecture registers its modules in a fixed order (embeddings, then each block's
// attention, MLP and norms, then the final norm and the head); the tables in
// parameter_order.cpp write that order down per naming family (docs/runs.md).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace muspec {

/// A model parameter in `named_parameters()` order.
struct ModelParam {
  std::string name;
  std::vector<int64_t> shape;
};

/// `weights` (any order; canonical names, no buffers, no tied duplicates) sorted into module
/// registration order for the naming family of the names. Returns nullopt and sets `why` when
/// a name has no known place (an unknown family or module): a partial order would be a guess.
std::optional<std::vector<ModelParam>> registration_order(const std::vector<ModelParam>& weights, std::string* why);

/// True for tensors that state_dict() holds but named_parameters() does not: persistent
/// buffers such as rotary `inv_freq`, GPT-2/nanoGPT causal masks (`attn.bias` 4-D,
/// `attn.masked_bias`), position_ids, BatchNorm statistics.
bool is_known_buffer(const std::string& canonical_name, const std::vector<int64_t>& shape);

}  // namespace muspec
