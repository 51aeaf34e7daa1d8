// Where a tensor file sits in a training run: run, step, config, manifest.
// Layouts recognised (../shared/reference/checkpoint-formats.md §4): HF Trainer
// `checkpoint-N/`, `step_N/` / `step-N/` / `stepN/`, Megatron `iter_000N/`, DeepSpeed
// `global_stepN/`, nanoGPT `ckpt.pt`, and plain files.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "model/model_config.h"

namespace muspec {

/// A run manifest (`muspec-run.json` in a run directory, or one entry of --manifest FILE).
struct RunManifest {
  std::string run;                       ///< run name
  int64_t params = 0;                    ///< model parameters (as the user counts them)
  int64_t non_embedding_params = 0;
  int layers = 0;
  std::string architecture;              ///< naming family hint ("llama", "gpt2", ...)
  std::string recipe;                    ///< optimizer name-recovery recipe
  std::vector<std::string> param_order;  ///< optimizer id i -> parameter name (exact mapping)
  std::string source;                    ///< file it was read from
  std::vector<std::string> notes;        ///< fields that were malformed and ignored (each loses only itself)
};

/// Parses a manifest object. Whole-number floats (`2e7`, Python's `20000000.0`) count as
/// integers. A malformed field is ignored with a note; only a non-object throws InputError.
RunManifest manifest_from_json(const nlohmann::json& j, const std::string& source);

/// Everything known about one tensor file's place in a run.
struct CheckpointContext {
  std::string run;          ///< manifest name, else the run directory's name
  std::string run_dir;
  int64_t step = -1;        ///< from the directory name, else trainer_state.json global_step; -1 unknown
  std::string step_dir;     ///< directory of this checkpoint step ("" for a plain file)
  std::shared_ptr<const ModelConfig> config;     ///< config.json of the step or the run, if any
  std::shared_ptr<const RunManifest> manifest;   ///< muspec-run.json or --manifest entry, if any
  std::vector<std::string> notes;                ///< what was ignored while reading them
};

/// The step number encoded in a directory name, or -1.
int64_t step_from_directory_name(const std::string& name);

/// Finds the context of `file`. `sweep` (may be empty) holds --manifest entries, matched by
/// run name. Reads config.json (else Meta's params.json) / trainer_state.json / muspec-run.json
/// when present; a malformed one throws InputError naming it.
CheckpointContext context_of(const std::string& file, const std::vector<RunManifest>& sweep);

/// Reads --manifest FILE: a JSON list of manifests, or {"runs": [...]}.
std::vector<RunManifest> read_sweep_manifest(const std::string& path);

}  // namespace muspec
