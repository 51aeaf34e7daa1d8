// SpectrumRecord <-> bytes (core/byte_codec.h): every field in declaration order (strings,
// int64, doubles by bit pattern, bools as one byte 0/1, vectors with a u32 count), then the
// summary's numbers and quantiles, then, when asked, the layer metrics. Used by the scan journal
// (scan/journal.h, which leaves the layer metrics out and recomputes them from sigma) and by the
// isolated store reader (store/isolated_read.h, which sends them, as read from the file).
// Doubles round-trip bit for bit, NaN payloads included.
#pragma once

#include "core/byte_codec.h"
#include "spectra/record.h"

namespace muspec {

enum class LayerMetricsCoding { Omitted, Included };

void put_spectrum_record(ByteWriter& w, const SpectrumRecord& r, LayerMetricsCoding metrics);

/// The record put_spectrum_record wrote; throws ByteCodecError when the bytes end early or a
/// flag is not 0/1. It checks no rule of the store (spectrum_record_problem): callers do.
/// With LayerMetricsCoding::Omitted the layer metrics are left at their defaults.
SpectrumRecord get_spectrum_record(ByteReader& r, LayerMetricsCoding metrics);

}  // namespace muspec
