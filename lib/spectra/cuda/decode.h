// Internal to spectra/cuda/: decoding stored tensor bytes to float64 on the device, the GPU
// sibling of core/tensor.cpp's to_dense_row_major(). Uploading the stored bf16/f16/f32 bytes
// and widening them on the GPU moves 2-4x fewer bytes over PCIe than a host-side float64
// conversion and frees the host cores for reading the next matrix. The per-element rules and
// the accepted layouts are in decode_elements.h, shared with the host tests.
#pragma once

#include "core/tensor.h"
#include "spectra/cuda/cuda_context.h"
#include "spectra/cuda/decode_elements.h"

namespace muspec::cuda {

/// Decodes `layout.rows * layout.cols` stored elements at `d_stored` into float64 at `d_out`
/// (same order), applying `transform`, on ctx.stream(). Returns the NaN/Inf count and ‖X‖_F of
/// the finite entries, summed in a fixed order so that results do not depend on scheduling.
DenseConversion decode_on_device(CudaContext& ctx, const void* d_stored, const StoredLayout& layout,
                                 InputTransform transform, double* d_out);

}  // namespace muspec::cuda
