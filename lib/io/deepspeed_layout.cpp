#include "io/deepspeed_layout.h"

#include <algorithm>

namespace muspec::deepspeed {

namespace {

std::string num(int64_t v) { return std::to_string(v); }

/// Parameters of each group, as indices into `params`, in param_shapes order.
std::vector<std::vector<size_t>> members_by_group(const std::vector<ParamShape>& params, size_t groups) {
  std::vector<std::vector<size_t>> out(groups);
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].group < groups) out[params[i].group].push_back(i);
  return out;
}

void fail_all(std::vector<ParamPlan>& plans, const std::vector<size_t>& members, const std::string& why, int rank,
              bool totals_differ = false) {
  for (size_t i : members) {
    plans[i].pieces.clear();
    plans[i].problem = why;
    plans[i].blame_rank = rank;
    plans[i].totals_differ = totals_differ;
  }
}

size_t group_count(const FlatLengths& lengths) { return lengths.empty() ? 0 : lengths[0].size(); }

/// The lengths of `group` over the ranks, or a problem (a missing tensor).
std::string gather_lengths(const FlatLengths& lengths, size_t group, std::vector<int64_t>& out, int& rank) {
  out.clear();
  for (size_t r = 0; r < lengths.size(); ++r) {
    const int64_t n = group < lengths[r].size() ? lengths[r][group] : kAbsent;
    if (n < 0) {
      rank = static_cast<int>(r);
      return "rank " + num(static_cast<int64_t>(r)) + " stores no flat tensor for param group " + num(static_cast<int64_t>(group));
    }
    out.push_back(n);
  }
  return "";
}

/// ZeRO-1/2: partitions are equal, except one shorter partition followed only by empty ones
/// (the unpadded save of the last ranks). Returns the problem, with the rank at fault.
std::string check_partition_sizes(const std::vector<int64_t>& len, size_t group, int& rank) {
  const std::string g = " of param group " + num(static_cast<int64_t>(group));
  const int64_t full = len.empty() ? 0 : len[0];
  for (size_t r = 1; r < len.size(); ++r) {
    if (len[r] > full) {
      rank = 0;
      return "rank 0's partition" + g + " holds " + num(full) + " elements, fewer than rank " + num(static_cast<int64_t>(r)) +
             "'s " + num(len[r]) + " (partitions are equal but for the padding at the end)";
    }
    if (len[r - 1] < full && len[r] > 0) {
      rank = static_cast<int>(r - 1);
      return "rank " + num(static_cast<int64_t>(r - 1)) + "'s partition" + g + " holds " + num(len[r - 1]) +
             " elements, fewer than rank 0's " + num(full) + ", while rank " + num(static_cast<int64_t>(r)) +
             " after it still holds data: the partition is cut short";
    }
  }
  return "";
}

int64_t round_up(int64_t x, int64_t to) { return to <= 0 ? x : (x + to - 1) / to * to; }

int last_rank_with_data(const std::vector<int64_t>& len) {
  for (size_t r = len.size(); r-- > 0;)
    if (len[r] > 0) return static_cast<int>(r);
  return 0;
}

/// Pieces of the element range [begin, begin + n) of a space made of consecutive segments
/// `seg` (segment k holds [start_k, start_k + seg[k])). The segments are ranks (ZeRO-1/2: one
/// group over the ranks, `fixed` is the group) or groups (ZeRO-3: one rank's sub-groups,
/// `fixed` is the rank).
void cut(int64_t begin, int64_t n, int64_t at, const std::vector<int64_t>& seg, bool segments_are_ranks, size_t fixed,
         std::vector<FlatPiece>& out) {
  int64_t seg_start = 0;
  for (size_t k = 0; k < seg.size() && n > 0; ++k) {
    const int64_t seg_end = seg_start + seg[k];
    const int64_t lo = std::max(begin, seg_start), hi = std::min(begin + n, seg_end);
    if (lo < hi) {
      FlatPiece p;
      p.rank = segments_are_ranks ? k : fixed;
      p.group = segments_are_ranks ? fixed : k;
      p.start = lo - seg_start;
      p.length = hi - lo;
      p.at = at + (lo - begin);
      out.push_back(p);
    }
    seg_start = seg_end;
  }
}

/// Every plan fails with `why` when the ranks cannot be what `world` says.
bool bad_world(std::vector<ParamPlan>& plans, size_t ranks, int world) {
  if (world >= 1 && ranks == static_cast<size_t>(world)) return false;
  for (auto& p : plans) p.problem = num(static_cast<int64_t>(ranks)) + " ranks stored for a partition count of " + num(world);
  return true;
}

/// Parameters of a group the ranks do not store at all.
void fail_missing_groups(const std::vector<ParamShape>& params, size_t groups, std::vector<ParamPlan>& plans) {
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].group >= groups) plans[i].problem = "param group " + num(static_cast<int64_t>(params[i].group)) + " has no flat partitions";
}

}  // namespace

std::vector<ParamPlan> plan_zero12(const std::vector<ParamShape>& params, const FlatLengths& lengths, int world) {
  std::vector<ParamPlan> plans(params.size());
  if (bad_world(plans, lengths.size(), world)) return plans;
  const auto groups = members_by_group(params, group_count(lengths));
  fail_missing_groups(params, group_count(lengths), plans);
  for (size_t g = 0; g < groups.size(); ++g) {
    std::vector<int64_t> len;
    int rank = -1;
    std::string why = gather_lengths(lengths, g, len, rank);
    if (why.empty()) why = check_partition_sizes(len, g, rank);
    int64_t need = 0, avail = 0;
    for (size_t i : groups[g]) need += params[i].numel;
    for (int64_t n : len) avail += n;
    const int64_t align = 2 * static_cast<int64_t>(world);
    const bool totals_differ = why.empty() && (need > avail || round_up(need, align) != round_up(avail, align));
    if (totals_differ) {
      rank = need > avail ? last_rank_with_data(len) : -1;
      why = "param_shapes account for " + num(need) + " elements of param group " + num(static_cast<int64_t>(g)) +
            " but its " + num(static_cast<int64_t>(len.size())) + " partitions hold " + num(avail) +
            " (alignment padding is under " + num(align) + ")";
    }
    if (!why.empty()) {
      fail_all(plans, groups[g], why, rank, totals_differ);
      continue;
    }
    int64_t offset = 0;
    for (size_t i : groups[g]) {
      cut(offset, params[i].numel, 0, len, true, g, plans[i].pieces);
      offset += params[i].numel;
    }
  }
  return plans;
}

namespace {

/// The padded ZeRO-1/2 partition size of a group of `numel` elements over `world` ranks.
int64_t zero12_partition_size(int64_t numel, int world) { return round_up(numel, 2 * static_cast<int64_t>(world)) / world; }

/// The fp32 partitions must be the padded size or the unpadded share of it.
std::string check_weight_partitions(const FlatLengths& weights, size_t g, int64_t numel, int64_t size, int& rank) {
  for (size_t r = 0; r < weights.size(); ++r) {
    const int64_t have = g < weights[r].size() ? weights[r][g] : kAbsent;
    const int64_t lean = std::clamp<int64_t>(numel - static_cast<int64_t>(r) * size, 0, size);
    if (have != size && have != lean) {
      rank = static_cast<int>(r);
      return "rank " + num(static_cast<int64_t>(r)) + "'s fp32 partition of param group " + num(static_cast<int64_t>(g)) + " holds " +
             num(have) + " elements, neither the partition size " + num(size) + " nor its unpadded share " + num(lean) +
             ": the momentum buffers cannot be placed";
    }
  }
  return "";
}

/// One parameter's momentum, read whole from `rank`, whose buffer holds the parameters
/// overlapping its partition [rank·size, (rank+1)·size) back to back.
void place_momentum(const std::vector<ParamShape>& params, const std::vector<size_t>& members, size_t which,
                    const std::vector<int64_t>& offsets, int64_t size, size_t rank, size_t g, const FlatLengths& momentum,
                    ParamPlan& plan) {
  const int64_t lo = static_cast<int64_t>(rank) * size, hi = lo + size;
  int64_t before = 0, total = 0;
  for (size_t k = 0; k < members.size(); ++k) {
    const int64_t o = offsets[k], n = params[members[k]].numel;
    if (n == 0 || o + n <= lo || o >= hi) continue;
    if (k < which) before += n;
    total += n;
  }
  const int64_t have = g < momentum[rank].size() ? momentum[rank][g] : kAbsent;
  plan.blame_rank = static_cast<int>(rank);
  if (have < 0) {
    plan.problem = "rank " + num(static_cast<int64_t>(rank)) + " stores no momentum_buffer for param group " + num(static_cast<int64_t>(g));
  } else if (have != total) {
    plan.problem = "rank " + num(static_cast<int64_t>(rank)) + "'s momentum_buffer of param group " + num(static_cast<int64_t>(g)) +
                   " holds " + num(have) + " elements; the whole parameters overlapping its partition need " + num(total);
  } else {
    plan.blame_rank = -1;
    plan.pieces.push_back(FlatPiece{rank, g, before, params[members[which]].numel, 0});
  }
}

}  // namespace

std::vector<ParamPlan> plan_zero12_momentum(const std::vector<ParamShape>& params, const FlatLengths& momentum,
                                            const FlatLengths& weights, int world) {
  std::vector<ParamPlan> plans(params.size());
  if (bad_world(plans, weights.size(), world) || bad_world(plans, momentum.size(), world)) return plans;
  const auto groups = members_by_group(params, group_count(weights));
  fail_missing_groups(params, group_count(weights), plans);
  for (size_t g = 0; g < groups.size(); ++g) {
    std::vector<int64_t> offsets;
    int64_t numel = 0;
    for (size_t i : groups[g]) {
      offsets.push_back(numel);
      numel += params[i].numel;
    }
    const int64_t size = zero12_partition_size(numel, world);
    int rank = -1;
    if (const std::string why = check_weight_partitions(weights, g, numel, size, rank); !why.empty()) {
      fail_all(plans, groups[g], why, rank);
      continue;
    }
    for (size_t k = 0; k < groups[g].size(); ++k) {
      if (params[groups[g][k]].numel == 0) continue;
      const size_t first = static_cast<size_t>(offsets[k] / std::max<int64_t>(size, 1));
      if (first >= momentum.size()) {
        plans[groups[g][k]].problem = "lies past the last rank's partition";
        continue;
      }
      place_momentum(params, groups[g], k, offsets, size, first, g, momentum, plans[groups[g][k]]);
    }
  }
  return plans;
}

namespace {

int64_t slice_size(int64_t numel, int world) { return (numel + world - 1) / world; }

/// ZeRO-3: each rank's flat sub-groups together hold its slice of every parameter.
std::string check_zero3_ranks(const FlatLengths& weights, int64_t per_rank, int& rank) {
  std::vector<int64_t> totals;
  for (size_t r = 0; r < weights.size(); ++r) {
    int64_t t = 0;
    for (size_t g = 0; g < weights[r].size(); ++g) {
      if (weights[r][g] < 0) {
        rank = static_cast<int>(r);
        return "rank " + num(static_cast<int64_t>(r)) + " stores no flat tensor for sub-group " + num(static_cast<int64_t>(g));
      }
      t += weights[r][g];
    }
    totals.push_back(t);
  }
  const bool all_differ = std::none_of(totals.begin(), totals.end(), [&](int64_t t) { return t == per_rank; });
  for (size_t r = 0; r < totals.size(); ++r) {
    if (totals[r] == per_rank) continue;
    rank = all_differ ? -1 : static_cast<int>(r);
    return "param_shapes need " + num(per_rank) + " elements on every rank (each parameter's ceil(numel/" +
           num(static_cast<int64_t>(weights.size())) + ") slice) but rank " + num(static_cast<int64_t>(r)) + "'s flat groups hold " +
           num(totals[r]);
  }
  return "";
}

/// The kind's tensors must have the weights' lengths wherever they exist.
std::string check_kind_pieces(const std::vector<FlatPiece>& pieces, const FlatLengths& weights, const FlatLengths& kind, int& rank) {
  for (const FlatPiece& p : pieces) {
    const int64_t have = p.group < kind[p.rank].size() ? kind[p.rank][p.group] : kAbsent;
    if (have == weights[p.rank][p.group]) continue;
    rank = static_cast<int>(p.rank);
    return have < 0 ? "rank " + num(static_cast<int64_t>(p.rank)) + " stores no such state for sub-group " + num(static_cast<int64_t>(p.group))
                    : "rank " + num(static_cast<int64_t>(p.rank)) + "'s state for sub-group " + num(static_cast<int64_t>(p.group)) +
                          " holds " + num(have) + " elements, its fp32 weights " + num(weights[p.rank][p.group]);
  }
  return "";
}

}  // namespace

std::vector<ParamPlan> plan_zero3(const std::vector<ParamShape>& params, const FlatLengths& weights, const FlatLengths& kind,
                                  int world) {
  std::vector<ParamPlan> plans(params.size());
  int rank = -1;
  if (bad_world(plans, weights.size(), world) || bad_world(plans, kind.size(), world)) return plans;
  int64_t per_rank = 0;
  for (const auto& p : params) per_rank += slice_size(p.numel, world);
  if (const std::string why = check_zero3_ranks(weights, per_rank, rank); !why.empty()) {
    for (auto& p : plans) p.problem = why, p.blame_rank = rank;
    return plans;
  }
  int64_t offset = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const int64_t size = slice_size(params[i].numel, world);
    for (int r = 0; r < world; ++r) {
      const int64_t at = static_cast<int64_t>(r) * size;
      const int64_t n = std::min(size, params[i].numel - at);
      if (n > 0) cut(offset, n, at, weights[static_cast<size_t>(r)], false, static_cast<size_t>(r), plans[i].pieces);
    }
    offset += size;
    if (std::string why = check_kind_pieces(plans[i].pieces, weights, kind, rank); !why.empty()) {
      plans[i].pieces.clear();
      plans[i].problem = why;
      plans[i].blame_rank = rank;
    }
  }
  return plans;
}

std::vector<int64_t> zero3_first_group(const std::vector<ParamShape>& params, const FlatLengths& weights, int world) {
  std::vector<int64_t> out(params.size(), -1);
  if (weights.empty() || world < 1) return out;
  int64_t offset = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    int64_t start = 0;
    for (size_t g = 0; g < weights[0].size() && params[i].numel > 0; ++g) {
      if (weights[0][g] > 0 && offset >= start && offset < start + weights[0][g]) out[i] = static_cast<int64_t>(g);
      start += std::max<int64_t>(weights[0][g], 0);
    }
    offset += slice_size(params[i].numel, world);
  }
  return out;
}

}  // namespace muspec::deepspeed
