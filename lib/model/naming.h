// Layer identity: what every named checkpoint tensor is (operator type, block index, storage
// orientation, whether Muon would orthogonalize it) and how fused tensors split into parts.
//
// The facts come from checkpoint-formats.md §4.4–4.7 and §6; the per-family naming rules live
// in one table (lib/model/architectures.cpp, documented in docs/naming.md). Example:
//
//   muspec::ParameterNamer namer("gpt2");
//   namer.add_override(R"(\.attn\.c_attn\.weight$)", muspec::OperatorType::QKV);
//   muspec::LayerIdentity id = namer.identify("transformer.h.3.attn.c_attn.weight", {768, 2304});
//   // id.op == QKV, id.layer == 3, id.stored_transposed == true, id.muon_eligible == true
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace muspec {

struct ModelConfig;

/// What a parameter does in the network. QA/QB and KVA/KVB are the low-rank halves of
/// DeepSeek's multi-head latent attention (q_a_proj, q_b_proj, kv_a_proj_with_mqa, kv_b_proj);
/// Router is a mixture-of-experts gate (never a Muon matrix).
enum class OperatorType { Q, K, V, QKV, O, Gate, Up, GateUp, Down, Embed, Head, Norm, Other, QA, QB, KVA, KVB, Router };

/// "q","k","v","qkv","o","gate","up","gate_up","down","embed","head","norm","other","q_a","q_b",
/// "kv_a","kv_b","router".
const char* operator_type_name(OperatorType op);

/// Inverse of operator_type_name (exact, lower case); nullopt for an unknown name.
std::optional<OperatorType> parse_operator_type(const std::string& name);

/// How the parts of a fused tensor are arranged in storage (the stored tensor, before any
/// transposition for reporting). Parts are always listed in operator order: q, k, v or gate, up.
enum class FusedLayout {
  None,             ///< not fused
  QkvConcatRows,    ///< [q; k; v] along dim 0: (heads·hd + 2·kv·hd, H) (Phi-3, OLMo att_proj, OLMo-core w_qkv)
  QkvConcatCols,    ///< [q | k | v] along dim 1 of a Conv1D (in, out) weight: (H, 3H) (GPT-2 c_attn)
  QkvHeadInterleaved,  ///< rows viewed as (heads, 3, hd): GPT-NeoX/Pythia query_key_value
  QkvGrouped,       ///< rows viewed as (kv, heads/kv + 2, hd): per KV group q heads, k, v (Megatron linear_qkv)
  QkvStacked3D,     ///< a 3-D (3, heads·hd, H) tensor, part p = t[p] (modded-nanogpt qkv_w)
  GateUpRows,       ///< [gate; up] along dim 0: (2·I, H) (Phi-3 gate_up_proj)
  UpGateRows,       ///< [up; gate] along dim 0: (2·I, H) (original OLMo ff_proj)
};

/// One row of the naming table. `pattern` is an ECMAScript regex searched in the canonical
/// name (see ParameterNamer::canonical_name); the first matching row wins.
struct NamingRule {
  const char* family;   ///< "llama", "gpt2", ... (reported in LayerIdentity::family)
  const char* pattern;  ///< anchored at the end with `$`; starts with `(?:^|\.)` by convention
  OperatorType op;
  int layer_group;      ///< capture group holding the block index; 0 = not in a block
  bool transposed;      ///< weight stored (in, out) (Conv1D); never applied to biases
  FusedLayout layout;   ///< how a fused weight splits; None otherwise
};

/// The built-in table, in matching order (architectures.cpp).
const std::vector<NamingRule>& naming_table();

/// The table family that a hint names: a table family itself ("llama", "gpt2", "gpt_neox",
/// "nanogpt", "modded-nanogpt", "olmo", "olmo-core", "phi3", "megatron") or a Hugging Face
/// model_type alias (see family_for_model_type). Empty when unknown.
std::string resolve_family_hint(const std::string& hint);

/// The naming family of a config.json `model_type`: llama, mistral, mixtral, qwen2, qwen3,
/// olmo, olmo2, gemma, gemma2 → "llama" (HF-native OLMo uses Llama names); phi3 → "phi3";
/// gpt2 → "gpt2"; gpt_neox → "gpt_neox"; hf_olmo → "olmo" (original OLMo). "" when unknown.
std::string family_for_model_type(const std::string& model_type);

/// Everything muspec knows about one named tensor.
struct LayerIdentity {
  std::string parameter;           ///< canonical name: wrapper prefixes stripped (see canonical_name)
  OperatorType op = OperatorType::Other;
  int layer = -1;                  ///< block index; -1 when not in a block (embed/head/final norm)
  std::string family;              ///< table family of the matching row; "" when no row matched
  bool bias = false;               ///< the name ends in ".bias"
  bool stored_transposed = false;  ///< stored (in, out) (GPT-2 Conv1D): report in (out, in)
  bool muon_eligible = false;      ///< hidden matrix inside a block (rules in docs/naming.md)
  bool expert_bank = false;        ///< a 3-D [E, out, in] stack of per-expert matrices
  FusedLayout fused = FusedLayout::None;  ///< for q‖k‖v and gate‖up tensors; see fused_parts
  bool overridden = false;         ///< the op came from a user rule
};

/// A user rule "REGEX=op", "REGEX=op,muon", "REGEX=op,no-muon", "REGEX=muon" or
/// "REGEX=no-muon" (the CLI's --op-rule): sets the operator type, Muon eligibility, or both.
struct OpRule {
  std::string regex;
  std::optional<OperatorType> op;
  std::optional<bool> muon;
};

/// Parses a rule, splitting at the LAST '=' (op names contain none, regexes may).
/// Throws UsageError for a missing '=', an empty regex, an unknown op (listing the valid
/// names) or a regex that does not compile.
OpRule parse_op_rule(const std::string& spec);

/// Longest name matched against regexes; longer names are reported as Other (block index
/// still parsed) so that hostile files cannot drive std::regex into deep recursion.
constexpr size_t kMaxMatchedNameLength = 1024;

/// Maps tensor names to LayerIdentity using the table plus user overrides. Thread-safe for
/// concurrent identify() calls once configured.
class ParameterNamer {
 public:
  /// `family_hint` ("" = detect from each name) gives that family's rows priority; the rest of
  /// the table is still tried afterwards. It matters where two families share names: GPT-2
  /// (Conv1D, transposed) and nanoGPT (nn.Linear) both use transformer.h.N.attn.c_attn. Without
  /// a hint, names that carried an `_orig_mod.` prefix (a torch.compile'd training script) are
  /// read as nanoGPT, others as Hugging Face GPT-2. Throws UsageError for an unknown hint.
  explicit ParameterNamer(std::string family_hint = "");
  ~ParameterNamer();
  ParameterNamer(const ParameterNamer&);
  ParameterNamer& operator=(const ParameterNamer&);
  ParameterNamer(ParameterNamer&&) noexcept;
  ParameterNamer& operator=(ParameterNamer&&) noexcept;

  /// Adds a user rule; rules are tried before the table, in the order added, with regex_search
  /// on the canonical name. An override replaces the operator type only: block index, family
  /// and orientation still come from the table row (or the generic block-index rule). Throws
  /// UsageError when the regex does not compile.
  void add_override(const std::string& regex, OperatorType op) { add_override(OpRule{regex, op, std::nullopt}); }
  void add_override(const OpRule& rule);

  /// Identifies one tensor. `shape` is the stored shape; it decides only muon_eligible.
  LayerIdentity identify(const std::string& name, const std::vector<int64_t>& shape) const;

  /// The table family given priority ("" when none).
  const std::string& family_hint() const { return hint_; }

  /// Strips wrapper artefacts: leading "module." (DDP) and every "_orig_mod." (torch.compile),
  /// "_fsdp_wrapped_module." and "_checkpoint_wrapped_module." component. "model." is never
  /// stripped: it belongs to the Hugging Face names. `had_orig_mod` reports whether an
  /// "_orig_mod." component was removed.
  static std::string canonical_name(const std::string& name, bool* had_orig_mod = nullptr);

 private:
  struct Override;
  std::string hint_;
  std::vector<Override> overrides_;
};

/// The block index of a name that no rule matched: the first dotted component made only of
/// digits ("encoder.layers.7.foo.weight" → 7), -1 when there is none or it exceeds INT_MAX.
int generic_block_index(const std::string& canonical_name);

/// Position of a block in the stack: layer / (layers − 1), in [0, 1]; 0 for a single-layer
/// model. Returns -1 (never NaN) when the tensor is not in a block (layer < 0) or the depth is
/// unknown (layers <= 0). Throws UsageError when layer >= layers > 0.
double relative_depth(int layer, int layers);

/// Indices start + i·stride + j for i in [0, count), j in [0, block): `count` runs of `block`
/// consecutive indices, `stride` apart. Listed in that order (i major, j minor).
struct IndexBlocks {
  int64_t start = 0;
  int64_t block = 0;
  int64_t count = 1;
  int64_t stride = 0;
  int64_t size() const { return block * count; }
  std::vector<int64_t> indices() const;  ///< the expanded list (for tests and small slicers)
};

/// One part of a fused tensor: gather `index` along `axis` of the stored tensor, then reshape
/// to `shape` (the part's matrix in stored orientation; reverse it when stored_transposed).
struct FusedPart {
  OperatorType op = OperatorType::Other;  ///< Q, K, V, Gate or Up
  int axis = 0;
  IndexBlocks index;
  std::vector<int64_t> shape;
  bool stored_transposed = false;
};

/// The parts of a fused weight (empty for non-fused identities and for biases), q, k, v or
/// gate, up in that order. Uses the config where the layout needs it (heads, KV heads, head
/// dimension, intermediate size) and checks every stated size against `shape`. Throws
/// InputError(config.source, id.parameter, reason) when the shape disagrees with the config
/// or the config lacks a field the split needs.
std::vector<FusedPart> fused_parts(const LayerIdentity& id, const ModelConfig& config,
                                   const std::vector<int64_t>& shape);

}  // namespace muspec
