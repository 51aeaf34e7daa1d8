// muspec synth OUT_DIR --spectrum SPEC --shape MxN [--count K] [--dtype f32|bf16|f16|f64] [--seed S]
#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>
#include <memory>

#include <nlohmann/json.hpp>

#include "cli/app.h"
#include "cli/commands.h"
#include "core/atomic_file.h"
#include "core/build_config.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "scan/synthetic.h"

namespace muspec::cli {

namespace {

struct SynthArgs {
  std::string out_dir, spectrum, shape, dtype = "f32", name = "synth";
  int count = 1;
  uint64_t seed = 0;
};

std::pair<int64_t, int64_t> parse_shape(const std::string& s) {
  const auto x = s.find('x');
  try {
    if (x != std::string::npos) {
      size_t u1 = 0, u2 = 0;
      const long long m = std::stoll(s.substr(0, x), &u1), n = std::stoll(s.substr(x + 1), &u2);
      if (u1 == x && u2 == s.size() - x - 1 && m > 0 && n > 0 && m <= 65536 && n <= 65536) return {m, n};
    }
  } catch (const std::exception&) {
  }
  throw UsageError("--shape '" + s + "': expected MxN with 1 <= M, N <= 65536, e.g. 512x1024");
}

int run_synth(const SynthArgs& a) {
  const auto [m, n] = parse_shape(a.shape);
  const SpectrumSpec spec = parse_spectrum_spec(a.spectrum);
  const auto dtype = dtype_from_user_name(a.dtype);
  if (!dtype || !(*dtype == DType::F32 || *dtype == DType::BF16 || *dtype == DType::F16 || *dtype == DType::F64))
    throw UsageError("--dtype '" + a.dtype + "': expected f32, bf16, f16 or f64");
  if (a.count < 1 || a.count > 100000) throw UsageError("--count must be between 1 and 100000");
  std::filesystem::create_directories(a.out_dir);

  SynthRng rng(a.seed);
  std::vector<SafetensorsTensor> tensors;
  nlohmann::json truth = {{"generator", std::string("muspec synth ") + kVersion}, {"spectrum", a.spectrum},
                          {"shape", {m, n}}, {"dtype", std::string(dtype_name(*dtype))}, {"seed", a.seed},
                          {"matrices", nlohmann::json::object()}};
  for (int i = 0; i < a.count; ++i) {
    char tname[64];
    std::snprintf(tname, sizeof tname, "%s.%03d", a.name.c_str(), i);
    const std::vector<double> sigma = make_spectrum(spec, std::min(m, n), a.seed + static_cast<uint64_t>(i));
    const std::vector<double> x = make_matrix_with_spectrum(m, n, sigma, rng);
    RoundedMatrix stored = round_to_dtype(x, *dtype);
    tensors.push_back({tname, *dtype, {m, n}, std::move(stored.bytes)});
    truth["matrices"][tname] = {{"sigma", sigma}, {"perturbation_bound", stored.perturbation_bound}};
  }
  const std::string base = (std::filesystem::path(a.out_dir) / a.name).string();
  write_safetensors(base + ".safetensors", tensors, {{"format", "pt"}, {"generator", "muspec synth"}});
  write_file_atomically(base + ".spectra.json", truth.dump(1) + "\n");
  std::cout << "wrote " << a.count << " matrices of " << m << "x" << n << " " << dtype_name(*dtype) << " to "
            << base << ".safetensors, exact spectra in " << base << ".spectra.json\n";
  return kExitOk;
}

}  // namespace

Action setup_synth(CLI::App& sub) {
  auto a = std::make_shared<SynthArgs>();
  sub.add_option("out_dir", a->out_dir, "directory to write into (created if missing)")->required();
  sub.add_option("--spectrum", a->spectrum,
                 "power:ALPHA | mp:RATIO | loguniform:LO,HI | logspace:LO,HI | file:PATH")->required();
  sub.add_option("--shape", a->shape, "MxN, e.g. 512x1376")->required();
  sub.add_option("--count", a->count, "number of matrices")->capture_default_str();
  sub.add_option("--dtype", a->dtype, "f32 | bf16 | f16 | f64")->capture_default_str();
  sub.add_option("--seed", a->seed, "random seed (output is identical for a seed)")->capture_default_str();
  sub.add_option("--name", a->name, "file stem and tensor-name prefix")->capture_default_str();
  return [a] { return run_synth(*a); };
}

}  // namespace muspec::cli
