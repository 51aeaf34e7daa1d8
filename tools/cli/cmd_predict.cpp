// muspec predict --laws laws.json --params M [--level 0.95] [-o predictions.json|.csv]
// Each group's predicted quantile at model size M with a prediction interval (docs/scaling-laws.md).
#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>

#include "cli/app.h"
#include "cli/commands.h"
#include "core/atomic_file.h"
#include "core/error.h"
#include "report/law_report.h"
#include "laws/laws.h"

namespace muspec::cli {

namespace {

using namespace muspec::analysis;

struct PredictArgs {
  std::string laws_path, out;
  double params = 0, level = 0.95;
  bool quiet = false;
};

int run_predict_command(const PredictArgs& a) {
  check_paths({{"--laws", a.laws_path}}, {{"-o", a.out}});
  if (!a.out.empty() && !ends_with(a.out, ".json") && !ends_with(a.out, ".csv"))
    throw UsageError("-o: the file name must end in .json or .csv, got '" + a.out + "'");
  const LawSet laws = read_laws_json(a.laws_path);
  for (const auto& n : laws.notes) std::cerr << "muspec: note: " << n << "\n";
  const std::vector<LawPrediction> ps = predict_laws(laws, a.params, a.level);
  if (ps.empty()) {
    std::cerr << "muspec: error: " << a.laws_path << " holds no fitted law (every group was refused)\n";
    return kExitFatal;
  }
  if (ends_with(a.out, ".json")) write_file_atomically(a.out, predictions_json(ps, a.params, a.laws_path));
  if (ends_with(a.out, ".csv")) write_file_atomically(a.out, predictions_csv(ps, a.params));
  if (!a.quiet) std::cout << predictions_table(ps, a.params);
  return kExitOk;
}

}  // namespace

Action setup_predict(CLI::App& sub) {
  auto a = std::make_shared<PredictArgs>();
  sub.add_option("--laws", a->laws_path, "laws.json written by `muspec fit`")->required();
  sub.add_option("--params", a->params, "target model size in parameters, in [1e3, 1e15] (e.g. 7e10)")->required();
  sub.add_option("--level", a->level, "prediction-interval level")->capture_default_str();
  sub.add_option("-o,--output", a->out, "also write the predictions (.json or .csv)");
  sub.add_flag("-q,--quiet", a->quiet, "no table on the terminal");
  return [a] { return run_predict_command(*a); };
}

}  // namespace muspec::cli
