#include "io/chunk_assembly.h"

#include <algorithm>
#include <cstring>
#include <numeric>

#include "core/error.h"

namespace muspec {
namespace {

std::string shape_text(const std::vector<int64_t>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

std::string chunk_text(const TensorChunk& c) {
  return "chunk at offsets " + shape_text(c.offsets) + " sizes " + shape_text(c.sizes) + " in " + c.file;
}

// Element count of a box; false on overflow.
bool box_volume(const std::vector<int64_t>& sizes, uint64_t* out) {
  uint64_t n = 1;
  for (int64_t s : sizes)
    if (!checked_mul(n, static_cast<uint64_t>(s), &n)) return false;
  *out = n;
  return true;
}

// A chunk must have the tensor's rank, non-negative offsets and sizes, and lie inside it.
void check_chunk_bounds(const std::string& tensor, const std::vector<int64_t>& shape, const TensorChunk& c) {
  if (c.offsets.size() != shape.size() || c.sizes.size() != shape.size())
    throw InputError(c.file, tensor, chunk_text(c) + " has a different rank from the tensor's shape " + shape_text(shape));
  for (size_t d = 0; d < shape.size(); ++d) {
    if (c.offsets[d] < 0 || c.sizes[d] < 0)
      throw InputError(c.file, tensor, chunk_text(c) + " has a negative offset or size");
    int64_t end;
    if (__builtin_add_overflow(c.offsets[d], c.sizes[d], &end) || end > shape[d])
      throw InputError(c.file, tensor, chunk_text(c) + " lies outside the tensor's shape " + shape_text(shape));
  }
}

bool boxes_intersect(const TensorChunk& a, const TensorChunk& b) {
  for (size_t d = 0; d < a.offsets.size(); ++d)
    if (a.offsets[d] >= b.offsets[d] + b.sizes[d] || b.offsets[d] >= a.offsets[d] + a.sizes[d]) return false;
  return true;
}

// The dimension whose chunk start offsets are most varied: sweeping along it keeps the
// pairwise overlap search near-linear for row-, column- and block-sharded tensors alike.
size_t sweep_dimension(const std::vector<const TensorChunk*>& chunks, size_t rank) {
  size_t best = 0, best_distinct = 0;
  for (size_t d = 0; d < rank; ++d) {
    std::vector<int64_t> starts;
    for (const TensorChunk* c : chunks) starts.push_back(c->offsets[d]);
    std::sort(starts.begin(), starts.end());
    size_t distinct = static_cast<size_t>(std::unique(starts.begin(), starts.end()) - starts.begin());
    if (distinct > best_distinct) best = d, best_distinct = distinct;
  }
  return best;
}

// Pair comparisons allowed before giving up: only a crafted file gets near this.
constexpr uint64_t kMaxOverlapComparisons = 50'000'000;

// Finds two overlapping chunks by a sweep along one dimension; throws naming both.
void check_no_overlap(const std::string& tensor, const std::vector<const TensorChunk*>& chunks, size_t rank) {
  if (chunks.size() < 2) return;
  if (rank == 0)  // two non-empty chunks of a scalar always overlap
    throw InputError(chunks[1]->file, tensor, "two chunks hold the same scalar: " + chunk_text(*chunks[0]) + " and " + chunk_text(*chunks[1]));
  const size_t d = sweep_dimension(chunks, rank);
  std::vector<const TensorChunk*> order = chunks;
  std::sort(order.begin(), order.end(), [d](const TensorChunk* a, const TensorChunk* b) { return a->offsets[d] < b->offsets[d]; });
  uint64_t comparisons = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    const int64_t end = order[i]->offsets[d] + order[i]->sizes[d];
    for (size_t j = i + 1; j < order.size() && order[j]->offsets[d] < end; ++j) {
      if (++comparisons > kMaxOverlapComparisons)
        throw InputError(order[i]->file, tensor, "too many mutually overlapping chunk ranges to check (" + std::to_string(order.size()) + " chunks)");
      if (boxes_intersect(*order[i], *order[j]))
        throw InputError(order[j]->file, tensor, "chunks overlap: " + chunk_text(*order[i]) + " and " + chunk_text(*order[j]));
    }
  }
}

}  // namespace

void check_chunk_coverage(const std::string& tensor, const std::vector<int64_t>& shape,
                          const std::vector<TensorChunk>& chunks) {
  for (int64_t s : shape)
    if (s < 0) throw InputError(chunks.empty() ? std::string() : chunks.front().file, tensor, "negative dimension in shape " + shape_text(shape));
  uint64_t total;
  if (!box_volume(shape, &total))
    throw InputError(chunks.empty() ? std::string() : chunks.front().file, tensor, "element count of shape " + shape_text(shape) + " overflows");
  uint64_t covered = 0;
  std::vector<const TensorChunk*> nonempty;
  for (const TensorChunk& c : chunks) {
    check_chunk_bounds(tensor, shape, c);
    uint64_t v = 0;
    box_volume(c.sizes, &v);  // cannot overflow: the chunk lies inside the tensor
    if (v == 0) continue;
    nonempty.push_back(&c);
    if (!checked_add(covered, v, &covered) || covered > total) covered = total + 1;  // certainly overlapping
  }
  check_no_overlap(tensor, nonempty, shape.size());
  if (covered < total) {
    std::string files;
    for (const TensorChunk& c : chunks)
      if (files.find(c.file) == std::string::npos) files += (files.empty() ? "" : ", ") + c.file;
    throw InputError(files, tensor, "the chunks leave " + std::to_string(total - covered) + " of " + std::to_string(total) +
                                        " elements of shape " + shape_text(shape) + " uncovered (a shard file or chunk is missing)");
  }
}

TensorRegion TensorRegion::whole(const std::vector<int64_t>& shape) {
  return TensorRegion{std::vector<int64_t>(shape.size(), 0), shape};
}

TensorRegion TensorRegion::leading_slice(const std::vector<int64_t>& shape, int64_t index) {
  MUSPEC_ASSERT(!shape.empty() && index >= 0 && index < shape[0]);
  TensorRegion r = whole(shape);
  r.offsets[0] = index;
  r.sizes[0] = 1;
  return r;
}

namespace {

struct Box {  // a half-open box [lo, hi) per dimension
  std::vector<int64_t> lo, hi;
  bool empty() const {
    for (size_t d = 0; d < lo.size(); ++d)
      if (lo[d] >= hi[d]) return true;
    return false;
  }
};

Box intersect(const TensorChunk& c, const TensorRegion& r) {
  Box b;
  for (size_t d = 0; d < c.offsets.size(); ++d) {
    b.lo.push_back(std::max(c.offsets[d], r.offsets[d]));
    b.hi.push_back(std::min(c.offsets[d] + c.sizes[d], r.offsets[d] + r.sizes[d]));
  }
  return b;
}

// The loaded chunk must be what the metadata promised.
void check_loaded_chunk(const std::string& tensor, DType dtype, const TensorChunk& c, const TensorView& v) {
  if (v.shape != c.sizes)
    throw InputError(c.file, tensor, chunk_text(c) + " holds a tensor of shape " + shape_text(v.shape) + ", not the declared sizes");
  if (v.dtype != dtype)
    throw InputError(c.file, tensor, chunk_text(c) + " holds " + std::string(dtype_name(v.dtype)) + ", the tensor is declared " +
                                         std::string(dtype_name(dtype)));
  const std::string problem = v.bounds_problem();
  if (!problem.empty()) throw InputError(c.file, tensor, chunk_text(c) + ": " + problem);
}

// Copies the part `b` of chunk `c` (loaded as `src`) into the region's row-major buffer.
void copy_box(const TensorChunk& c, const TensorView& src, const Box& b, const TensorRegion& r,
              const std::vector<int64_t>& dst_strides, size_t elem, uint8_t* dst) {
  const size_t rank = b.lo.size();
  if (rank == 0) {
    std::memcpy(dst, src.data, elem);
    return;
  }
  const size_t last = rank - 1;
  const int64_t run = b.hi[last] - b.lo[last];
  std::vector<int64_t> idx = b.lo;  // global index of the current run's first element
  while (true) {
    int64_t s = 0, t = 0;
    for (size_t d = 0; d < rank; ++d) {
      s += (idx[d] - c.offsets[d]) * src.strides[d];
      t += (idx[d] - r.offsets[d]) * dst_strides[d];
    }
    if (src.strides[last] == 1) {
      std::memcpy(dst + t * elem, src.data + s * elem, static_cast<size_t>(run) * elem);
    } else {
      for (int64_t k = 0; k < run; ++k)
        std::memcpy(dst + (t + k) * elem, src.data + (s + k * src.strides[last]) * elem, elem);
    }
    size_t d = last;  // advance the outer index like an odometer
    while (d-- > 0) {
      if (++idx[d] < b.hi[d]) break;
      idx[d] = b.lo[d];
    }
    if (d == static_cast<size_t>(-1)) return;
  }
}

}  // namespace

TensorHandle assemble_region(const std::string& tensor, const std::vector<int64_t>& shape,
                             DType dtype, const std::vector<TensorChunk>& chunks,
                             const TensorRegion& region) {
  MUSPEC_ASSERT(region.offsets.size() == shape.size() && region.sizes.size() == shape.size());
  for (size_t d = 0; d < shape.size(); ++d)
    MUSPEC_ASSERT(region.offsets[d] >= 0 && region.sizes[d] >= 0 && region.offsets[d] + region.sizes[d] <= shape[d]);
  const int bits = dtype_bits(dtype);
  if (bits % 8 != 0)
    throw InputError(chunks.empty() ? std::string() : chunks.front().file, tensor,
                     "packed sub-byte dtype " + std::string(dtype_name(dtype)) + " cannot be assembled from chunks");
  const size_t elem = static_cast<size_t>(bits / 8);
  uint64_t count = 0, bytes = 0;
  if (!box_volume(region.sizes, &count) || !checked_mul(count, elem, &bytes))
    throw InputError(chunks.empty() ? std::string() : chunks.front().file, tensor, "region " + shape_text(region.sizes) + " is too large");
  // Uninitialised on purpose: check_chunk_coverage() proved every byte is written below, and
  // zero-filling a large buffer first costs a full extra pass over memory.
  std::shared_ptr<uint8_t> buffer(new uint8_t[std::max<uint64_t>(bytes, 1)], std::default_delete<uint8_t[]>());
  TensorHandle out;
  out.view.dtype = dtype;
  out.view.shape = region.sizes;
  out.view.strides = TensorView::contiguous_strides(region.sizes);
  out.view.data = buffer.get();
  out.view.reachable_bytes = bytes;
  bool order_known = false;
  for (const TensorChunk& c : chunks) {
    const Box b = intersect(c, region);
    if (count == 0 || b.empty()) continue;
    TensorHandle h = c.load();
    check_loaded_chunk(tensor, dtype, c, h.view);
    if (order_known && h.view.byte_order != out.view.byte_order)
      throw InputError(c.file, tensor, chunk_text(c) + " has a different byte order from the other chunks");
    out.view.byte_order = h.view.byte_order;
    order_known = true;
    copy_box(c, h.view, b, region, out.view.strides, elem, buffer.get());
  }
  out.keepalive = std::move(buffer);
  return out;
}

}  // namespace muspec
