#include "spectra/record_codec.h"

namespace muspec {

namespace {

void put_layer_metrics(ByteWriter& w, const LayerMetrics& m) {
  for (const LayerMetricField& f : layer_metric_fields()) {
    if (f.real != nullptr) w.f64(m.*f.real);
    else w.i64(m.*f.count);
  }
  w.str(m.note);
}

LayerMetrics get_layer_metrics(ByteReader& r) {
  LayerMetrics m;
  for (const LayerMetricField& f : layer_metric_fields()) {
    if (f.real != nullptr) m.*f.real = r.f64();
    else m.*f.count = r.i64();
  }
  m.note = r.str();
  return m;
}

}  // namespace

void put_spectrum_record(ByteWriter& w, const SpectrumRecord& r, LayerMetricsCoding metrics) {
  w.str(r.name), w.str(r.tensor), w.i64(r.slice), w.str(r.file), w.i64(r.rows), w.i64(r.cols);
  w.i64s(r.tensor_shape), w.str(r.dtype), w.str(r.transform);
  w.str(r.run), w.i64(r.step), w.i64(r.model_params), w.str(r.params_source), w.str(r.sharded), w.i64(r.shards);
  w.str(r.kind), w.str(r.parameter), w.str(r.op_type), w.i64(r.layer), w.i64(r.num_layers), w.f64(r.rel_depth);
  w.flag(r.muon), w.flag(r.transposed), w.str(r.method), w.str(r.device), w.f64(r.floor), w.i64(r.nonfinite);
  w.f64s(r.sigma);
  const SpectralSummary& s = r.summary;
  w.f64(s.sigma_max), w.f64(s.sigma_min), w.f64(s.frobenius), w.f64(s.nuclear), w.f64(s.cond), w.f64(s.stable_rank);
  w.f64(s.effective_rank), w.i64(s.below_floor);
  w.u32(static_cast<uint32_t>(s.quantiles.size()));
  for (const QuantileValue& q : s.quantiles) w.f64(q.q), w.f64(q.sigma), w.f64(q.rel_max), w.f64(q.rel_frob), w.f64(q.cond);
  if (metrics == LayerMetricsCoding::Included) put_layer_metrics(w, r.layer_metrics);
}

SpectrumRecord get_spectrum_record(ByteReader& r, LayerMetricsCoding metrics) {
  SpectrumRecord x;
  x.name = r.str(), x.tensor = r.str(), x.slice = r.i64(), x.file = r.str(), x.rows = r.i64(), x.cols = r.i64();
  x.tensor_shape = r.i64s(), x.dtype = r.str(), x.transform = r.str();
  x.run = r.str(), x.step = r.i64(), x.model_params = r.i64(), x.params_source = r.str(), x.sharded = r.str();
  x.shards = r.i64();
  x.kind = r.str(), x.parameter = r.str(), x.op_type = r.str(), x.layer = r.i64(), x.num_layers = r.i64();
  x.rel_depth = r.f64();
  x.muon = r.flag(), x.transposed = r.flag(), x.method = r.str(), x.device = r.str(), x.floor = r.f64();
  x.nonfinite = r.i64();
  x.sigma = r.f64s();
  SpectralSummary& s = x.summary;
  s.sigma_max = r.f64(), s.sigma_min = r.f64(), s.frobenius = r.f64(), s.nuclear = r.f64(), s.cond = r.f64();
  s.stable_rank = r.f64(), s.effective_rank = r.f64(), s.below_floor = r.i64();
  s.quantiles.resize(r.count(40, "a quantile"));
  for (QuantileValue& q : s.quantiles) q.q = r.f64(), q.sigma = r.f64(), q.rel_max = r.f64(), q.rel_frob = r.f64(), q.cond = r.f64();
  if (metrics == LayerMetricsCoding::Included) x.layer_metrics = get_layer_metrics(r);
  return x;
}

}  // namespace muspec
