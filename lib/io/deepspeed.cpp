// DeepSpeed ZeRO checkpoints as one TensorSource: the pickles are read inert (io/pickle.h via
// TorchFile), the partition layout is io/deepspeed_layout.h, and every tensor is put together
// by the shared chunk-assembly step (io/chunk_assembly.h).
#include "io/deepspeed.h"

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>
#include <unordered_map>

#include "core/error.h"
#include "io/chunk_assembly.h"
#include "io/deepspeed_files.h"
#include "io/deepspeed_layout.h"
#include "io/torch_file.h"

namespace muspec {

namespace {

namespace ds = deepspeed;
using pickle::Kind;
using pickle::Value;
using pickle::ValuePtr;

constexpr int64_t kMaxElements = int64_t{1} << 60;  // sums of untrusted sizes stay far from overflow
const char* const kStateKeys[] = {"momentum_buffer", "exp_avg", "exp_avg_sq"};

std::optional<int64_t> int_of(const ValuePtr& v) {
  if (v && v->kind == Kind::Int) return v->integer;
  return std::nullopt;
}

/// zero_stage: an int, ZeroStageEnum(n) (Python <= 3.10, >= 3.12) or getattr(ZeroStageEnum,
/// "name") (Python 3.11), all inert values here.
std::optional<int64_t> zero_stage_of(const ValuePtr& v) {
  if (!v) return std::nullopt;
  if (auto i = int_of(v)) return i;
  if (v->kind != Kind::Object || !v->args || v->args->kind != Kind::Tuple || v->args->items.empty()) return std::nullopt;
  const auto& a = v->args->items;
  if (v->name == "ZeroStageEnum") return int_of(a[0]);
  if (v->name == "getattr" && a.size() == 2 && a[0]->kind == Kind::Global && a[0]->name == "ZeroStageEnum" && a[1]->kind == Kind::String) {
    static const std::map<std::string, int64_t> stages = {
        {"disabled", 0}, {"optimizer_states", 1}, {"gradients", 2}, {"weights", 3}, {"max_stage", 3}};
    const auto it = stages.find(a[1]->text);
    if (it != stages.end()) return it->second;
  }
  return std::nullopt;
}

std::string shape_text(const std::vector<int64_t>& s) {
  std::string t = "[";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

/// One parameter's shape from param_shapes (a torch.Size, read as a tuple of ints).
ds::ParamShape param_shape(const std::string& file, const std::string& name, const ValuePtr& v, size_t group) {
  ds::ParamShape p;
  p.name = name;
  p.group = group;
  if (!v || (v->kind != Kind::Tuple && v->kind != Kind::List) || v->items.size() > 16)
    throw InputError(file, name, "param_shapes entry is not a shape");
  p.numel = 1;
  for (const auto& d : v->items) {
    const auto n = int_of(d);
    if (!n || *n < 0) throw InputError(file, name, "param_shapes entry has a dimension that is not a non-negative integer");
    p.shape.push_back(*n);
    if (__builtin_mul_overflow(p.numel, *n, &p.numel) || p.numel > kMaxElements)
      throw InputError(file, name, "param_shapes entry " + shape_text(p.shape) + " has too many elements");
  }
  return p;
}

/// param_shapes: a list (one per param group) of name -> shape dicts, in flat order.
std::vector<ds::ParamShape> read_param_shapes(const TorchFile& model) {
  const ValuePtr shapes = model.root() ? model.root()->get("param_shapes") : nullptr;
  if (!shapes || shapes->kind != Kind::List)
    throw InputError(model.path(), "", "no param_shapes list: not a DeepSpeed ZeRO model-states file (saved without ZeRO?)");
  std::vector<ds::ParamShape> params;
  std::map<std::string, int> seen;
  int64_t total = 0;
  for (size_t g = 0; g < shapes->items.size(); ++g) {
    const ValuePtr& group = shapes->items[g];
    if (group->kind != Kind::Dict) throw InputError(model.path(), "", "param_shapes[" + std::to_string(g) + "] is not a dict");
    for (size_t i = 0; i + 1 < group->items.size(); i += 2) {
      if (group->items[i]->kind != Kind::String) throw InputError(model.path(), "", "param_shapes has a key that is not a name");
      const std::string& name = group->items[i]->text;
      if (seen[name]++) throw InputError(model.path(), name, "listed twice in param_shapes");
      params.push_back(param_shape(model.path(), name, group->items[i + 1], g));
      total += params.back().numel;
      if (total > kMaxElements) throw InputError(model.path(), name, "param_shapes add up to too many elements");
    }
  }
  return params;
}

/// One stored flat tensor of a rank's file.
struct Flat {
  size_t entry = 0;
  int64_t length = ds::kAbsent;
  DType dtype = DType::F32;
};

/// An optimizer-state file of one rank.
struct RankFile {
  std::shared_ptr<TorchFile> file;
  std::unordered_map<std::string, size_t> by_name;  // TorchFile entry name (object path) -> index
  ValuePtr osd;                                     // its optimizer_state_dict

  /// The 1-D floating tensor at object path `name`, or nullopt when there is none.
  std::optional<Flat> flat(const std::string& name) const {
    const auto it = by_name.find(name);
    if (it == by_name.end()) return std::nullopt;
    const TensorEntry& e = file->entries()[it->second];
    if (e.shape.size() != 1 || !e.dtype || !dtype_is_decodable_float(*e.dtype))
      throw InputError(file->path(), name, "a flat partition must be a 1-D floating tensor, this one is " + e.dtype_label + " " + shape_text(e.shape));
    return Flat{it->second, e.shape[0], *e.dtype};
  }
};

RankFile open_rank(const std::string& path) {
  RankFile r;
  r.file = TorchFile::open(path);
  for (size_t i = 0; i < r.file->entries().size(); ++i) r.by_name.emplace(r.file->entries()[i].name, i);
  r.osd = r.file->root() ? r.file->root()->get("optimizer_state_dict") : nullptr;
  if (!r.osd || r.osd->kind != Kind::Dict) throw InputError(path, "", "no optimizer_state_dict: not a DeepSpeed ZeRO optimizer-state file");
  return r;
}

/// What a rank's optimizer_state_dict declares.
struct Partitioning {
  int stage = 1;        ///< 3, or 1 for stages 1/2 and the BF16 optimizer (one layout)
  std::string label;    ///< "deepspeed-zero1", "-zero2", "-zero3", "-bf16" (BF16_Optimizer)
  int64_t world = 1;    ///< data-parallel ranks
  bool operator!=(const Partitioning& o) const { return stage != o.stage || label != o.label || world != o.world; }
};

Partitioning partitioning_of(const RankFile& r) {
  const std::string& path = r.file->path();
  Partitioning p;
  if (const ValuePtr z = r.osd->get("zero_stage")) {
    const auto s = zero_stage_of(z);
    if (!s || *s < 1 || *s > 3) throw InputError(path, "", "zero_stage is not 1, 2 or 3");
    p.stage = *s == 3 ? 3 : 1;
    p.label = "deepspeed-zero" + std::to_string(*s);
  } else if (r.osd->get("single_partition_of_fp32_groups")) {
    p.label = "deepspeed-bf16";  // BF16_Optimizer: no zero_stage, ZeRO-1 partitions
  } else if (r.osd->get("fp32_flat_groups")) {
    p.stage = 3;
    p.label = "deepspeed-zero3";
  } else {
    throw InputError(path, "", "optimizer_state_dict has neither single_partition_of_fp32_groups nor fp32_flat_groups");
  }
  const ValuePtr pc = r.osd->get("partition_count");
  std::optional<int64_t> world = int_of(pc);
  if (!world && pc && pc->kind == Kind::List && !pc->items.empty()) {
    world = int_of(pc->items[0]);
    for (const auto& c : pc->items)
      if (int_of(c) != world)
        throw InputError(path, "", "param groups are partitioned over different numbers of ranks (expert parallelism): not reassembled");
  }
  if (!world || *world < 1 || *world > 1 << 20) throw InputError(path, "", "partition_count is missing or not a positive integer");
  p.world = *world;
  return p;
}

const char* weights_key(int stage) { return stage == 3 ? "fp32_flat_groups" : "single_partition_of_fp32_groups"; }

/// The fp32 flat tensors of one rank, one per (sub-)group.
std::vector<Flat> weight_flats(const RankFile& r, int stage) {
  const std::string key = weights_key(stage);
  const ValuePtr list = r.osd->get(key);
  if (!list || list->kind != Kind::List) throw InputError(r.file->path(), "", key + " is not a list of tensors");
  std::vector<Flat> out;
  for (size_t g = 0; g < list->items.size(); ++g) {
    const std::string name = "optimizer_state_dict/" + key + "/" + std::to_string(g);
    const auto f = r.flat(name);
    if (!f) throw InputError(r.file->path(), name, "is not a tensor");
    out.push_back(*f);
  }
  return out;
}

using GroupStates = std::vector<std::map<std::string, Flat>>;  // per group: state key -> tensor

/// The torch optimizer state_dict at object path `base`: group g's state is that of the g-th
/// parameter id over param_groups (each group's one flat partition, or ZeRO-3's sub-groups).
GroupStates torch_states(const RankFile& r, const ValuePtr& sd, const std::string& base) {
  GroupStates out;
  const ValuePtr groups = sd->get("param_groups"), state = sd->get("state");
  if (!groups || groups->kind != Kind::List || !state || state->kind != Kind::Dict) return out;
  for (const auto& g : groups->items) {
    const ValuePtr ids = g->kind == Kind::Dict ? g->get("params") : nullptr;
    if (!ids || ids->kind != Kind::List) continue;
    for (const auto& id : ids->items) {
      out.emplace_back();
      const auto n = int_of(id);
      if (!n) continue;
      for (const char* key : kStateKeys)
        if (auto f = r.flat(base + "/state/" + std::to_string(*n) + "/" + key)) out.back()[key] = *f;
    }
  }
  return out;
}

/// The base optimizer's flat state tensors of one rank, per (sub-)group.
GroupStates state_flats(const RankFile& r, int stage) {
  const std::string base = stage == 3 ? "optimizer_state_dict/optimizer_state_dict" : "optimizer_state_dict/base_optimizer_state";
  const ValuePtr sd = r.osd->get(stage == 3 ? "optimizer_state_dict" : "base_optimizer_state");
  if (!sd) return {};
  if (sd->kind == Kind::Dict) return torch_states(r, sd, base);
  GroupStates out;  // elastic_checkpoint: a list of per-group state dicts
  if (sd->kind != Kind::List) return out;
  for (size_t g = 0; g < sd->items.size(); ++g) {
    out.emplace_back();
    for (const char* key : kStateKeys)
      if (auto f = r.flat(base + "/" + std::to_string(g) + "/" + key)) out.back()[key] = *f;
  }
  return out;
}

/// The per-rank tensors of one kind ("fp32" weights or a state key) and their lengths.
struct KindTensors {
  std::vector<std::vector<std::optional<Flat>>> flats;  // [rank][group]
  ds::FlatLengths lengths;
  bool any = false;
};

/// A parameter's tensor, put together from chunks at load time.
struct TensorPlan {
  std::vector<TensorChunk> chunks;
  std::string problem, problem_file;
  int64_t numel = 0;
};

class ZeroCheckpoint final : public TensorSource {
 public:
  explicit ZeroCheckpoint(const std::string& path);
  const std::string& path() const override { return path_; }
  const std::vector<TensorEntry>& entries() const override { return entries_; }
  TensorHandle load(size_t index) const override;
  ShardingInfo sharding() const override { return {label_, static_cast<int64_t>(ranks_.size())}; }

 private:
  void open_ranks(const ds::TagFiles& files);
  KindTensors gather(const std::string& kind) const;
  void add_kind(const std::string& kind, const KindTensors& t, const KindTensors& weights);
  bool momentum_is_partitioned(const KindTensors& m, const KindTensors& w, size_t group) const;
  TensorPlan to_chunks(const ds::ParamPlan& plan, const KindTensors& t, const std::string& tensor, const std::string& what,
                       bool is_weight) const;

  std::string path_, model_file_, label_;
  int stage_ = 1;
  int world_ = 1;
  std::vector<ds::ParamShape> params_;
  std::vector<RankFile> ranks_;
  std::vector<std::vector<Flat>> weights_;   // [rank][group]
  std::vector<GroupStates> states_;          // [rank]
  std::vector<TensorEntry> entries_;
  std::vector<TensorPlan> plans_;            // parallel to entries_
};

ZeroCheckpoint::ZeroCheckpoint(const std::string& path) {
  const ds::TagFiles files = ds::list_tag_dir(ds::tag_dir_of(path));
  model_file_ = path_ = files.model_states;
  params_ = read_param_shapes(*TorchFile::open(model_file_));
  open_ranks(files);
  const KindTensors weights = gather("fp32");
  add_kind("fp32", weights, weights);
  for (const char* key : kStateKeys)
    if (const KindTensors t = gather(key); t.any) add_kind(key, t, weights);
}

void ZeroCheckpoint::open_ranks(const ds::TagFiles& files) {
  if (files.optim[0].empty())
    throw InputError((std::filesystem::path(files.dir) / ds::optim_file_name(files.optim_prefix, 0)).string(), "", "missing: rank 0's optimizer state");
  ranks_.push_back(open_rank(files.optim[0]));
  const Partitioning part = partitioning_of(ranks_[0]);
  const int64_t world = part.world;
  stage_ = part.stage;
  world_ = static_cast<int>(world);
  label_ = part.label;
  for (size_t r = 1; r < std::max<size_t>(files.optim.size(), static_cast<size_t>(world)); ++r) {
    const std::string expected = (std::filesystem::path(files.dir) / ds::optim_file_name(files.optim_prefix, r)).string();
    if (r >= static_cast<size_t>(world))
      throw InputError(files.optim[r].empty() ? expected : files.optim[r], "", "more optimizer-state files than partition_count " +
                       std::to_string(world) + " (files left from another run?)");
    if (r >= files.optim.size() || files.optim[r].empty())
      throw InputError(expected, "", "missing: partition_count says " + std::to_string(world) + " data-parallel ranks, every rank's partition is needed");
    ranks_.push_back(open_rank(files.optim[r]));
    if (partitioning_of(ranks_.back()) != part)
      throw InputError(files.optim[r], "", "declares another ZeRO stage or partition count than rank 0's file");
  }
  for (const RankFile& r : ranks_) {
    weights_.push_back(weight_flats(r, stage_));
    states_.push_back(state_flats(r, stage_));
  }
}

KindTensors ZeroCheckpoint::gather(const std::string& kind) const {
  KindTensors t;
  size_t groups = 0;
  for (const auto& w : weights_) groups = std::max(groups, w.size());
  t.flats.assign(ranks_.size(), std::vector<std::optional<Flat>>(groups));
  t.lengths.assign(ranks_.size(), std::vector<int64_t>(groups, ds::kAbsent));
  for (size_t r = 0; r < ranks_.size(); ++r) {
    for (size_t g = 0; g < groups; ++g) {
      std::optional<Flat> f;
      if (kind == "fp32") {
        if (g < weights_[r].size()) f = weights_[r][g];
      } else if (g < states_[r].size()) {
        const auto it = states_[r][g].find(kind);
        if (it != states_[r][g].end()) f = it->second;
      }
      if (!f) continue;
      t.flats[r][g] = f;
      t.lengths[r][g] = f->length;
      t.any = true;
    }
  }
  return t;
}

/// ZeRO-1/2: Muon keeps whole tensors per rank; a momentum_buffer whose lengths are those of
/// the partitions (torch SGD over the flat partition) lies like exp_avg.
bool ZeroCheckpoint::momentum_is_partitioned(const KindTensors& m, const KindTensors& w, size_t g) const {
  int64_t numel = 0;
  for (const auto& p : params_)
    if (p.group == g) numel += p.numel;
  const int64_t size = (numel + 2 * world_ - 1) / (2 * world_) * 2;
  for (size_t r = 0; r < m.lengths.size(); ++r) {
    const int64_t have = m.lengths[r][g], lean = std::clamp<int64_t>(numel - static_cast<int64_t>(r) * size, 0, size);
    if (have != size && have != lean && have != w.lengths[r][g]) return false;
  }
  return true;
}

void ZeroCheckpoint::add_kind(const std::string& kind, const KindTensors& t, const KindTensors& weights) {
  std::vector<ds::ParamPlan> plans;
  std::vector<int64_t> first_group;
  if (stage_ == 3) {
    plans = ds::plan_zero3(params_, weights.lengths, t.lengths, world_);
    first_group = ds::zero3_first_group(params_, weights.lengths, world_);
  } else {
    plans = ds::plan_zero12(params_, t.lengths, world_);
    if (kind == "momentum_buffer") {
      const auto whole = ds::plan_zero12_momentum(params_, t.lengths, weights.lengths, world_);
      for (size_t i = 0; i < params_.size(); ++i)
        if (!momentum_is_partitioned(t, weights, params_[i].group)) plans[i] = whole[i];
    }
  }
  const bool is_weight = kind == "fp32";
  const std::string what = is_weight ? "fp32 master weights" : kind;
  for (size_t i = 0; i < params_.size(); ++i) {
    const size_t g = stage_ == 3 ? static_cast<size_t>(std::max<int64_t>(first_group[i], 0)) : params_[i].group;
    bool present = false;  // a state exists for the parameter's group on some rank
    for (size_t r = 0; r < t.flats.size() && !present; ++r) present = g < t.flats[r].size() && t.flats[r][g].has_value();
    if (!is_weight && (!present || (stage_ == 3 && first_group[i] < 0))) continue;
    TensorEntry e;
    e.name = is_weight ? params_[i].name : "optimizer.state." + params_[i].name + "." + kind;
    e.file = std::filesystem::path(path_).parent_path().string();
    std::optional<Flat> sample;
    for (size_t r = 0; r < t.flats.size() && !sample; ++r)
      if (g < t.flats[r].size()) sample = t.flats[r][g];
    e.dtype = sample ? sample->dtype : DType::F32;
    e.dtype_label = std::string(dtype_name(*e.dtype));
    e.shape = params_[i].shape;
    e.nbytes = static_cast<uint64_t>(params_[i].numel) * static_cast<uint64_t>(std::max(1, dtype_bits(*e.dtype) / 8));
    TensorPlan plan = to_chunks(plans[i], t, e.name, what, is_weight);
    plan.numel = params_[i].numel;
    entries_.push_back(std::move(e));
    plans_.push_back(std::move(plan));
  }
}

/// A view of elements [start, start + length) of a 1-D tensor.
TensorHandle flat_slice(TensorHandle h, int64_t start, int64_t length, const std::string& file, const std::string& tensor) {
  TensorView& v = h.view;
  if (v.rank() != 1 || start < 0 || length < 0 || start > v.shape[0] - length)
    throw InputError(file, tensor, "elements [" + std::to_string(start) + ", " + std::to_string(start + length) +
                                       ") lie outside the flat partition " + shape_text(v.shape));
  const uint64_t skip = static_cast<uint64_t>(start) * static_cast<uint64_t>(v.strides[0]) *
                        static_cast<uint64_t>(std::max(1, dtype_bits(v.dtype) / 8));
  if (length > 0) {
    v.data += skip;
    v.reachable_bytes -= skip;
  }
  v.shape = {length};
  if (std::string why = v.bounds_problem(); !why.empty()) throw InputError(file, tensor, "slice of the flat partition: " + why);
  return h;
}

TensorPlan ZeroCheckpoint::to_chunks(const ds::ParamPlan& plan, const KindTensors& t, const std::string& tensor,
                                     const std::string& what, bool is_weight) const {
  TensorPlan out;
  if (!plan.problem.empty()) {
    out.problem = "ZeRO-" + std::string(stage_ == 3 ? "3" : "1/2") + " " + what + ": " + plan.problem;
    const bool shapes_at_fault = plan.totals_differ && is_weight;  // the fp32 partitions disagree with param_shapes
    out.problem_file = !shapes_at_fault && plan.blame_rank >= 0 && static_cast<size_t>(plan.blame_rank) < ranks_.size()
                           ? ranks_[static_cast<size_t>(plan.blame_rank)].file->path()
                           : model_file_;
    return out;
  }
  for (const ds::FlatPiece& p : plan.pieces) {
    const Flat& f = *t.flats[p.rank][p.group];  // a piece exists only where the layout saw a tensor
    std::shared_ptr<TorchFile> file = ranks_[p.rank].file;
    TensorChunk c;
    c.offsets = {p.at};
    c.sizes = {p.length};
    c.file = file->path();
    c.load = [file, entry = f.entry, start = p.start, length = p.length, tensor]() {
      try {
        return flat_slice(file->load(entry), start, length, file->path(), tensor);
      } catch (const InputError& e) {
        throw InputError(e.file(), tensor, e.reason());
      }
    };
    out.chunks.push_back(std::move(c));
  }
  return out;
}

TensorHandle ZeroCheckpoint::load(size_t index) const {
  if (index >= entries_.size()) throw UsageError("tensor index out of range");
  const TensorEntry& e = entries_[index];
  const TensorPlan& p = plans_[index];
  if (!p.problem.empty()) throw InputError(p.problem_file, e.name, p.problem);
  const std::vector<int64_t> flat{p.numel};
  check_chunk_coverage(e.name, flat, p.chunks);
  TensorHandle h = assemble_region(e.name, flat, *e.dtype, p.chunks, TensorRegion::whole(flat));
  h.view.shape = e.shape;  // the assembled buffer is contiguous: its view takes the parameter's shape
  h.view.strides = TensorView::contiguous_strides(e.shape);
  if (std::string why = h.view.bounds_problem(); !why.empty()) throw InputError(e.file, e.name, "assembled tensor: " + why);
  return h;
}

}  // namespace

std::unique_ptr<TensorSource> open_deepspeed_checkpoint(const std::string& path) {
  return std::make_unique<ZeroCheckpoint>(path);
}

}  // namespace muspec
