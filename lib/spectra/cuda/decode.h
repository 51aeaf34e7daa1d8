// Internal to spectra/cuda/: decoding stored tensor bytes to float64 on the device, the GPU
// sibling of core/tensor.cpp's to_dense_row_major(). Uploading the stored bf16/f16/f32 bytes
// and widening them on the GPU moves 2-4x fewer bytes over PCIe than a host-side float64
// conversion and frees the host cores for reading the next matrix.
#pragma once

#include <cstdint>
#include <optional>

#include "core/tensor.h"
#include "spectra/cuda/cuda_context.h"

namespace muspec::cuda {

/// The stored element types the device decodes (little-endian only; the host handles the rest).
enum class StoredType : uint8_t { F64, F32, F16, BF16 };

/// A matrix whose bytes are one contiguous block the device can decode element by element.
struct StoredLayout {
  StoredType type = StoredType::F32;
  int64_t rows = 0, cols = 0;  ///< of the row-major matrix the block holds (the transpose of
                               ///< the view for column-major storage: same singular values)
  int element_bytes = 4;
  size_t bytes() const { return static_cast<size_t>(rows) * static_cast<size_t>(cols) * static_cast<size_t>(element_bytes); }
};

/// The device layout of `m`, or nothing when its dtype, byte order or strides need the host
/// decoder (fp8, big-endian, non-contiguous slices).
std::optional<StoredLayout> device_layout(const MatrixView& m);

/// Decodes `layout.rows * layout.cols` stored elements at `d_stored` into float64 at `d_out`
/// (same order), applying `transform`, on ctx.stream(). Returns the NaN/Inf count and ‖X‖_F of
/// the finite entries, summed in a fixed order so that results do not depend on scheduling.
DenseConversion decode_on_device(CudaContext& ctx, const void* d_stored, const StoredLayout& layout,
                                 InputTransform transform, double* d_out);

}  // namespace muspec::cuda
