#include "model/naming.h"

#include <cctype>
#include <climits>
#include <regex>

#include "core/error.h"
#include "model/model_config.h"

namespace muspec {

// ---------------------------------------------------------------------------------------------
// Operator names

namespace {
constexpr const char* kOpNames[] = {"q",    "k",    "v",     "qkv",  "o",    "gate", "up",   "gate_up", "down",
                                    "embed", "head", "norm", "other", "q_a", "q_b", "kv_a", "kv_b",  "router"};
constexpr int kOpCount = static_cast<int>(sizeof(kOpNames) / sizeof(kOpNames[0]));

std::string valid_op_names() {
  std::string s;
  for (int i = 0; i < kOpCount; ++i) s += (i ? ", " : "") + std::string(kOpNames[i]);
  return s;
}
}  // namespace

const char* operator_type_name(OperatorType op) {
  const int i = static_cast<int>(op);
  MUSPEC_ASSERT(i >= 0 && i < kOpCount);
  return kOpNames[i];
}

std::optional<OperatorType> parse_operator_type(const std::string& name) {
  for (int i = 0; i < kOpCount; ++i)
    if (name == kOpNames[i]) return static_cast<OperatorType>(i);
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// The compiled table

namespace {

struct CompiledRule {
  const NamingRule* rule;
  std::regex re;
};

const std::vector<CompiledRule>& compiled_table() {
  static const std::vector<CompiledRule> compiled = [] {
    std::vector<CompiledRule> out;
    for (const NamingRule& r : naming_table())
      out.push_back({&r, std::regex(r.pattern, std::regex::ECMAScript | std::regex::optimize)});
    return out;
  }();
  return compiled;
}

std::regex compile_user_regex(const std::string& regex) {
  try {
    return std::regex(regex, std::regex::ECMAScript);
  } catch (const std::regex_error& e) {
    throw UsageError("invalid operator rule regex '" + regex + "': " + e.what());
  }
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Parses a run of ASCII digits as a non-negative int; -1 when it does not fit.
int parse_index(const std::string& digits) {
  if (digits.empty() || digits.size() > 10) return -1;
  long long v = 0;
  for (char ch : digits) {
    if (ch < '0' || ch > '9') return -1;
    v = v * 10 + (ch - '0');
  }
  return v > INT_MAX ? -1 : static_cast<int>(v);
}

// A stack of expert matrices stored as one parameter: "...experts.gate_proj",
// "...experts.w1.weight", "...experts.down_proj" (no expert index after "experts").
bool is_expert_bank_name(const std::string& canonical) {
  const size_t at = canonical.rfind("experts.");
  if (at == std::string::npos || (at > 0 && canonical[at - 1] != '.')) return false;
  const std::string rest = canonical.substr(at + 8);
  return !rest.empty() && !std::isdigit(static_cast<unsigned char>(rest[0]));
}

}  // namespace

struct ParameterNamer::Override {
  std::regex re;
  std::optional<OperatorType> op;
  std::optional<bool> muon;
};

// ---------------------------------------------------------------------------------------------
// Rules and the namer

OpRule parse_op_rule(const std::string& spec) {
  const size_t eq = spec.rfind('=');
  if (eq == std::string::npos)
    throw UsageError("operator rule '" + spec + "' must have the form REGEX=op");
  OpRule rule;
  rule.regex = spec.substr(0, eq);
  std::string op = spec.substr(eq + 1);
  if (rule.regex.empty()) throw UsageError("operator rule '" + spec + "' has an empty regex");
  // An optional eligibility word: "op,muon", "op,no-muon", or the word alone.
  const size_t comma = op.rfind(',');
  const std::string word = comma == std::string::npos ? op : op.substr(comma + 1);
  if (word == "muon" || word == "no-muon") {
    rule.muon = word == "muon";
    op = comma == std::string::npos ? "" : op.substr(0, comma);
  }
  if (!op.empty() || !rule.muon) {
    rule.op = parse_operator_type(op);
    if (!rule.op)
      throw UsageError("operator rule '" + spec + "': unknown operator type '" + op + "' (valid: " + valid_op_names() +
                       "; optionally followed by ',muon' or ',no-muon')");
  }
  compile_user_regex(rule.regex);  // reject a bad regex here, where the user typed it
  return rule;
}

ParameterNamer::ParameterNamer(std::string family_hint) {
  if (!family_hint.empty()) {
    hint_ = resolve_family_hint(family_hint);
    if (hint_.empty()) {
      std::string known;
      for (const NamingRule& r : naming_table())
        if (known.find(std::string(r.family) + ",") == std::string::npos) known += std::string(r.family) + ", ";
      throw UsageError("unknown model family '" + family_hint + "' (known: " + known +
                       "or a config.json model_type such as mistral, qwen2, hf_olmo)");
    }
  }
}

ParameterNamer::~ParameterNamer() = default;
ParameterNamer::ParameterNamer(const ParameterNamer&) = default;
ParameterNamer& ParameterNamer::operator=(const ParameterNamer&) = default;
ParameterNamer::ParameterNamer(ParameterNamer&&) noexcept = default;
ParameterNamer& ParameterNamer::operator=(ParameterNamer&&) noexcept = default;

void ParameterNamer::add_override(const OpRule& rule) {
  overrides_.push_back({compile_user_regex(rule.regex), rule.op, rule.muon});
}

std::string ParameterNamer::canonical_name(const std::string& name, bool* had_orig_mod) {
  static const char* const kAnywhere[] = {"_orig_mod.", "_fsdp_wrapped_module.",
                                          "_checkpoint_wrapped_module."};
  bool orig = false;
  // Split into dotted components and drop the wrapper ones.
  std::string out;
  out.reserve(name.size());
  size_t pos = 0;
  bool leading = true;
  while (pos <= name.size()) {
    size_t dot = name.find('.', pos);
    const bool last = dot == std::string::npos;
    if (last) dot = name.size();
    const std::string comp = name.substr(pos, dot - pos + (last ? 0 : 1));  // with its dot
    bool drop = false;
    if (!last) {
      for (const char* w : kAnywhere)
        if (comp == w) {
          drop = true;
          if (comp == "_orig_mod.") orig = true;
        }
      if (leading && comp == "module.") drop = true;
    }
    if (!drop) {
      out += comp;
      leading = false;
    }
    if (last) break;
    pos = dot + 1;
  }
  if (had_orig_mod) *had_orig_mod = orig;
  return out;
}

int generic_block_index(const std::string& canonical_name) {
  size_t pos = 0;
  while (pos < canonical_name.size()) {
    size_t dot = canonical_name.find('.', pos);
    if (dot == std::string::npos) break;  // the last component is the tensor, never a block
    const std::string comp = canonical_name.substr(pos, dot - pos);
    if (!comp.empty() && comp.find_first_not_of("0123456789") == std::string::npos) return parse_index(comp);
    pos = dot + 1;
  }
  return -1;
}

LayerIdentity ParameterNamer::identify(const std::string& name, const std::vector<int64_t>& shape) const {
  LayerIdentity id;
  bool had_orig_mod = false;
  id.parameter = canonical_name(name, &had_orig_mod);
  id.bias = ends_with(id.parameter, ".bias");
  const bool matchable = id.parameter.size() <= kMaxMatchedNameLength;

  // The hinted family's rows first, then the rest in table order.
  const std::string hint = !hint_.empty() ? hint_ : (had_orig_mod ? std::string("nanogpt") : std::string());
  const NamingRule* matched = nullptr;
  std::smatch m;
  if (matchable) {
    for (int pass = hint.empty() ? 1 : 0; pass < 2 && !matched; ++pass) {
      for (const CompiledRule& c : compiled_table()) {
        if ((pass == 0) != (hint == c.rule->family)) continue;
        if (std::regex_search(id.parameter, m, c.re)) {
          matched = c.rule;
          break;
        }
      }
    }
  }

  if (matched) {
    id.family = matched->family;
    id.op = matched->op;
    id.layer = matched->layer_group > 0 ? parse_index(m[matched->layer_group].str()) : -1;
    id.stored_transposed = matched->transposed && !id.bias;
    id.fused = matched->layout;
  } else {
    id.layer = generic_block_index(id.parameter);
  }

  id.expert_bank = shape.size() == 3 && is_expert_bank_name(id.parameter);
  std::optional<bool> muon_override;
  if (matchable) {
    for (const Override& o : overrides_) {
      if (!std::regex_search(id.parameter, o.re)) continue;
      id.overridden = true;
      muon_override = o.muon;
      if (o.op && *o.op != id.op) {
        id.op = *o.op;
        // A user-declared fused tensor splits the default way: [q; k; v] or [gate; up] rows.
        id.fused = o.op == OperatorType::QKV      ? FusedLayout::QkvConcatRows
                   : o.op == OperatorType::GateUp ? FusedLayout::GateUpRows
                                                  : FusedLayout::None;
        if (id.stored_transposed && id.fused == FusedLayout::QkvConcatRows) id.fused = FusedLayout::QkvConcatCols;
      }
      break;
    }
  }

  // Muon orthogonalizes hidden matrices inside blocks: not embeddings, the head, norms,
  // routers or biases. 3-D tensors qualify only when known as a batch of matrices (a stacked
  // qkv, an expert bank: each slice is its own matrix).
  const bool hidden_op = id.op != OperatorType::Embed && id.op != OperatorType::Head && id.op != OperatorType::Norm &&
                         id.op != OperatorType::Router;
  const bool matrix = shape.size() == 2 || (shape.size() == 3 && (id.fused == FusedLayout::QkvStacked3D || id.expert_bank));
  id.muon_eligible = hidden_op && !id.bias && id.layer >= 0 && matrix;
  if (muon_override) id.muon_eligible = *muon_override && !shape.empty() && shape.size() >= 2;
  return id;
}

double relative_depth(int layer, int layers) {
  if (layer < 0 || layers <= 0) return -1.0;
  if (layer >= layers)
    throw UsageError("layer " + std::to_string(layer) + " is outside a model of " + std::to_string(layers) +
                     " layers");
  if (layers == 1) return 0.0;
  return static_cast<double>(layer) / static_cast<double>(layers - 1);
}

// ---------------------------------------------------------------------------------------------
// Fused tensors

std::vector<int64_t> IndexBlocks::indices() const {
  std::vector<int64_t> out;
  out.reserve(static_cast<size_t>(size()));
  for (int64_t i = 0; i < count; ++i)
    for (int64_t j = 0; j < block; ++j) out.push_back(start + i * stride + j);
  return out;
}

namespace {

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + ")";
}

class Splitter {
 public:
  Splitter(const LayerIdentity& id, const ModelConfig& c, const std::vector<int64_t>& shape)
      : id_(id), c_(c), shape_(shape) {}

  [[noreturn]] void fail(const std::string& reason) const {
    throw InputError(c_.source, id_.parameter,
                     "cannot split fused " + std::string(operator_type_name(id_.op)) + " tensor of shape " +
                         shape_str(shape_) + ": " + reason);
  }

  void need(int64_t value, const char* field) const {
    if (value <= 0) fail(std::string("the model config does not give ") + field);
  }

  void expect(int64_t actual, int64_t wanted, const std::string& what) const {
    if (actual != wanted)
      fail(what + " is " + std::to_string(actual) + " but the config implies " + std::to_string(wanted));
  }

  // Checked product of sizes (a hand-built ModelConfig is not range-checked like a parsed one).
  int64_t mul(int64_t a, int64_t b) const {
    int64_t out = 0;
    if (__builtin_mul_overflow(a, b, &out)) fail("the sizes in the config overflow");
    return out;
  }

  // KV heads default to the head count; the head count must be a multiple of them.
  int64_t kv_heads() const {
    const int64_t kv = c_.num_kv_heads > 0 ? c_.num_kv_heads : c_.num_heads;
    if (kv > c_.num_heads || c_.num_heads % kv != 0)
      fail("num_attention_heads " + std::to_string(c_.num_heads) + " is not a multiple of num_key_value_heads " +
           std::to_string(kv));
    return kv;
  }

  // The hidden size must match the input dimension when the config states it.
  void check_hidden(int64_t dim) const {
    if (c_.hidden_size > 0) expect(dim, c_.hidden_size, "the input dimension");
  }

  FusedPart part(OperatorType op, int axis, int64_t start, int64_t block, int64_t count, int64_t stride,
                 std::vector<int64_t> part_shape) const {
    FusedPart p;
    p.op = op;
    p.axis = axis;
    p.index = {start, block, count, stride};
    p.shape = std::move(part_shape);
    p.stored_transposed = id_.stored_transposed;
    return p;
  }

  std::vector<FusedPart> qkv_rows_concat() const {
    need(c_.num_heads, "num_attention_heads");
    need(c_.head_dim, "head_dim (or hidden_size)");
    const int64_t q = mul(c_.num_heads, c_.head_dim), kv = mul(kv_heads(), c_.head_dim);
    expect(shape_[0], q + 2 * kv, "the row count ((heads + 2·kv_heads)·head_dim)");
    check_hidden(shape_[1]);
    return {part(OperatorType::Q, 0, 0, q, 1, q, {q, shape_[1]}),
            part(OperatorType::K, 0, q, kv, 1, kv, {kv, shape_[1]}),
            part(OperatorType::V, 0, q + kv, kv, 1, kv, {kv, shape_[1]})};
  }

  std::vector<FusedPart> qkv_cols_concat() const {
    // GPT-2 has no grouped-query attention: three equal column blocks of the Conv1D (in, 3·out).
    if (shape_[1] % 3 != 0) fail("the column count is not a multiple of 3");
    const int64_t w = shape_[1] / 3;
    if (c_.num_heads > 0 && c_.head_dim > 0) expect(w, mul(c_.num_heads, c_.head_dim), "each part's width");
    check_hidden(shape_[0]);
    return {part(OperatorType::Q, 1, 0, w, 1, w, {shape_[0], w}),
            part(OperatorType::K, 1, w, w, 1, w, {shape_[0], w}),
            part(OperatorType::V, 1, 2 * w, w, 1, w, {shape_[0], w})};
  }

  std::vector<FusedPart> qkv_head_interleaved() const {
    need(c_.num_heads, "num_attention_heads");
    const int64_t h = c_.num_heads, h3 = mul(3, h);
    if (shape_[0] % h3 != 0) fail("the row count is not a multiple of 3·heads = " + std::to_string(h3));
    const int64_t hd = shape_[0] / h3;
    if (c_.head_dim > 0) expect(hd, c_.head_dim, "the head dimension (rows / (3·heads))");
    check_hidden(shape_[1]);
    const std::vector<int64_t> ps{h * hd, shape_[1]};
    return {part(OperatorType::Q, 0, 0, hd, h, 3 * hd, ps), part(OperatorType::K, 0, hd, hd, h, 3 * hd, ps),
            part(OperatorType::V, 0, 2 * hd, hd, h, 3 * hd, ps)};
  }

  std::vector<FusedPart> qkv_grouped() const {
    need(c_.num_heads, "num_attention_heads");
    need(c_.head_dim, "head_dim (or hidden_size)");
    const int64_t g = kv_heads(), per = c_.num_heads / g, hd = c_.head_dim;
    const int64_t stride = mul(per + 2, hd);
    expect(shape_[0], mul(g, stride), "the row count ((heads + 2·kv_heads)·head_dim)");
    check_hidden(shape_[1]);
    return {part(OperatorType::Q, 0, 0, per * hd, g, stride, {g * per * hd, shape_[1]}),
            part(OperatorType::K, 0, per * hd, hd, g, stride, {g * hd, shape_[1]}),
            part(OperatorType::V, 0, (per + 1) * hd, hd, g, stride, {g * hd, shape_[1]})};
  }

  std::vector<FusedPart> qkv_stacked3d() const {
    if (shape_.size() != 3) fail("expected a 3-D (3, heads·head_dim, hidden) tensor");
    expect(shape_[0], 3, "the leading dimension");
    if (c_.num_heads > 0 && c_.head_dim > 0) expect(shape_[1], mul(c_.num_heads, c_.head_dim), "each part's row count");
    check_hidden(shape_[2]);
    const std::vector<int64_t> ps{shape_[1], shape_[2]};
    return {part(OperatorType::Q, 0, 0, 1, 1, 1, ps), part(OperatorType::K, 0, 1, 1, 1, 1, ps),
            part(OperatorType::V, 0, 2, 1, 1, 1, ps)};
  }

  std::vector<FusedPart> gate_up(bool gate_first) const {
    if (shape_[0] % 2 != 0) fail("the row count is odd");
    const int64_t i = shape_[0] / 2;
    if (c_.intermediate_size > 0) expect(i, c_.intermediate_size, "each half's row count");
    check_hidden(shape_[1]);
    const std::vector<int64_t> ps{i, shape_[1]};
    FusedPart first = part(gate_first ? OperatorType::Gate : OperatorType::Up, 0, 0, i, 1, i, ps);
    FusedPart second = part(gate_first ? OperatorType::Up : OperatorType::Gate, 0, i, i, 1, i, ps);
    if (gate_first) return {first, second};
    return {second, first};  // always gate, then up
  }

  std::vector<FusedPart> run() const {
    const FusedLayout l = id_.fused;
    if (l != FusedLayout::QkvStacked3D && shape_.size() != 2) fail("expected a 2-D matrix");
    for (int64_t d : shape_)
      if (d <= 0) fail("a dimension is not positive");
    switch (l) {
      case FusedLayout::QkvConcatRows: return qkv_rows_concat();
      case FusedLayout::QkvConcatCols: return qkv_cols_concat();
      case FusedLayout::QkvHeadInterleaved: return qkv_head_interleaved();
      case FusedLayout::QkvGrouped: return qkv_grouped();
      case FusedLayout::QkvStacked3D: return qkv_stacked3d();
      case FusedLayout::GateUpRows: return gate_up(true);
      case FusedLayout::UpGateRows: return gate_up(false);
      case FusedLayout::None: break;
    }
    return {};
  }

 private:
  const LayerIdentity& id_;
  const ModelConfig& c_;
  const std::vector<int64_t>& shape_;
};

}  // namespace

std::vector<FusedPart> fused_parts(const LayerIdentity& id, const ModelConfig& config,
                                   const std::vector<int64_t>& shape) {
  if (id.fused == FusedLayout::None || id.bias) return {};
  return Splitter(id, config, shape).run();
}

}  // namespace muspec
