#include "ns/catalog.h"

#include <filesystem>

#include "core/error.h"

namespace muspec::ns {

namespace {

Schedule make(std::string name, std::string source, std::vector<OddPoly> polys, Family family,
              int default_steps, Normalization norm = Normalization{}) {
  Schedule s;
  s.name = std::move(name);
  s.source = std::move(source);
  s.polys = std::move(polys);
  s.family = family;
  s.default_steps = default_steps;
  s.normalization = norm;
  return s;
}

// Keller Jordan's quintic: KellerJordan/Muon muon.py (commit 00ba60d),
// zeropower_via_newtonschulz5, (a, b, c) = (3.4445, -4.7750, 2.0315) at every step, 5 steps,
// divisor ||X||_F + 1e-7 (reference §3.1). The same triple is torch.optim.Muon's default (§4).
const OddPoly kKeller{3.4445, -4.7750, 2.0315};

Schedule keller() {
  return make("keller",
              "Keller Jordan, KellerJordan/Muon muon.py @00ba60d: (3.4445, -4.7750, 2.0315) repeated",
              {kKeller}, Family::Settling, 5);
}

// Classical cubic Newton–Schulz p(x) = 1.5x - 0.5x^3 (modula docs "Newton-Schulz",
// docs.modula.systems/algorithms/newton-schulz; §1 of CANS, arXiv 2506.10935; reference §7.2).
Schedule cubic() {
  return make("cubic", "classical cubic Newton-Schulz (1.5, -0.5) repeated (modula docs; CANS §1)",
              {OddPoly{1.5, -0.5, 0.0}}, Family::Converging, 5);
}

// Polar Express, arXiv 2505.16932 Algorithm 1 / NoahAmsel/PolarExpress polar_express/basic.py:
// the unscaled 8-step table; the kernel divides rows 1-7 by the safety factor 1.01 in the sense
// (a/1.01, b/1.01^3, c/1.01^5), keeps row 8, repeats row 8 past the end and normalizes by
// ||X||_F * 1.01 + 1e-7 (reference §5.7, §5.8).
Schedule polar_express() {
  std::vector<OddPoly> rows = polar_express_unscaled_table();
  for (size_t i = 0; i + 1 < rows.size(); ++i) rows[i] = rows[i].input_scaled(1.01);
  return make("polar-express",
              "Polar Express (Amsel et al., arXiv 2505.16932), published 8-step table, rows 1-7 "
              "divided by safety factor 1.01, last row repeated",
              std::move(rows), Family::Converging, 5, Normalization{0.01, 1e-7});
}

// You Jiacheng's 5-step set, x.com/YouJiacheng/status/1905861218138804534; used by
// microsoft/dion dion/muon.py (@0c20549) with divisor ||X||_F + epsilon (function default 1e-7),
// by Gram-NS as YOU_COEFFICIENTS and by optax as 'dion' (reference §7.1, §8.4).
Schedule you5() {
  return make("you-5",
              "You Jiacheng 5-step set (x.com/YouJiacheng/status/1905861218138804534; microsoft/dion)",
              {{4.0848, -6.8946, 2.9270},
               {3.9505, -6.3029, 2.6377},
               {3.7418, -5.5913, 2.3037},
               {2.8769, -3.1427, 1.2046},
               {2.8366, -3.0525, 1.2012}},
              Family::Converging, 5);
}

// You Jiacheng's 6-step set, exact binary fractions over 1024:
// x.com/YouJiacheng/status/1893704552689303901, gist YouJiacheng/393c90cbdc23b09d5688815ba382288b
// (reference §7.1).
Schedule jiacheng6() {
  constexpr double d = 1024.0;
  return make("jiacheng-6",
              "You Jiacheng 6-step set /1024 (x.com/YouJiacheng/status/1893704552689303901)",
              {{3955 / d, -8306 / d, 5008 / d},
               {3735 / d, -6681 / d, 3463 / d},
               {3799 / d, -6499 / d, 3211 / d},
               {4019 / d, -6385 / d, 2906 / d},
               {2677 / d, -3029 / d, 1162 / d},
               {2172 / d, -1833 / d, 682 / d}},
              Family::Converging, 6);
}

// DeepSeek-V4 technical report §2.4 (reference §7.4): 8 x (3.4445, -4.7750, 2.0315) then
// 2 x (2, -1.5, 0.5). The report's normalization guard is not stated; ||X||_F + 1e-7 assumed.
Schedule deepseek_v4() {
  std::vector<OddPoly> polys(8, kKeller);
  polys.push_back({2.0, -1.5, 0.5});
  polys.push_back({2.0, -1.5, 0.5});
  return make("deepseek-v4",
              "DeepSeek-V4 report §2.4: 8 x Keller (3.4445, -4.7750, 2.0315) + 2 x (2, -1.5, 0.5)",
              std::move(polys), Family::Converging, 10);
}

}  // namespace

std::vector<OddPoly> polar_express_unscaled_table() {
  return {
      {8.28721201814563, -23.595886519098837, 17.300387312530933},
      {4.107059111542203, -2.9478499167379106, 0.5448431082926601},
      {3.9486908534822946, -2.908902115962949, 0.5518191394370137},
      {3.3184196573706015, -2.488488024314874, 0.51004894012372},
      {2.300652019954817, -1.6689039845747493, 0.4188073119525673},
      {1.891301407787398, -1.2679958271945868, 0.37680408948524835},
      {1.8750014808534479, -1.2500016453999487, 0.3750001645474248},
      {1.875, -1.25, 0.375},
  };
}

std::vector<std::string> catalog_names() {
  return {"keller", "cubic", "polar-express", "you-5", "jiacheng-6", "deepseek-v4"};
}

Schedule builtin_schedule(const std::string& name) {
  if (name == "keller") return keller();
  if (name == "cubic") return cubic();
  if (name == "polar-express") return polar_express();
  if (name == "you-5") return you5();
  if (name == "jiacheng-6") return jiacheng6();
  if (name == "deepseek-v4") return deepseek_v4();
  std::string list;
  for (const std::string& n : catalog_names()) list += (list.empty() ? "" : ", ") + n;
  throw UsageError("unknown schedule '" + name + "' (built-in: " + list + ")");
}

Schedule resolve_schedule(const std::string& spec) {
  for (const std::string& n : catalog_names())
    if (n == spec) return builtin_schedule(n);
  std::error_code ec;
  if (std::filesystem::is_regular_file(spec, ec)) return load_schedule_file(spec);
  std::string list;
  for (const std::string& n : catalog_names()) list += (list.empty() ? "" : ", ") + n;
  throw UsageError("schedule '" + spec + "' is neither a built-in schedule (" + list +
                   ") nor a schedule file");
}

}  // namespace muspec::ns
