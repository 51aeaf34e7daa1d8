// The scaling-law figure (analysis/law_plot, analysis/svg_plot, `muspec plot`). The SVG is read
// back the way a person reads a chart: each panel's decade tick labels give the pixel <-> value
// map, and every drawn point, fitted line and band edge mapped back must be the laws.json
// numbers: the run points, q = a·M^β, and the 95% band with Student t(3) = 3.18244630528
// (published table value, not muspec's own quantile function).
#include <catch2/catch.hpp>

#include <cmath>
#include <regex>
#include <string>
#include <vector>

#include "core/error.h"
#include "report/law_plot.h"
#include "laws/laws.h"
#include "report/svg_plot.h"
#include "test_support.h"

using namespace muspec;
using namespace muspec::analysis;
using muspec_test::run_muspec;
using muspec_test::TempDir;

namespace {

constexpr double kT975Dof3 = 3.182446305284263;

FittedLaw planted_law(const std::string& name, double log_a, double beta, double level) {
  FittedLaw f;
  f.group.name = name;
  f.group.op_type = name.substr(0, name.find('/'));
  f.quantile_level = level;
  f.log_a = log_a, f.beta = beta;
  f.se_log_a = 0.8, f.se_beta = 0.06, f.cov_log_a_beta = -0.047;
  f.beta_ci_lo = beta - 0.2, f.beta_ci_hi = beta + 0.2;
  f.r2 = 0.97, f.dof = 3, f.num_runs = 5, f.num_sizes = 5;
  const double sizes[] = {2e7, 6e7, 1.5e8, 4e8, 1e9};
  const double wiggle[] = {0.05, -0.08, 0.02, 0.07, -0.04};
  for (int i = 0; i < 5; ++i) {
    RunPoint p;
    p.run = "size" + std::to_string(i);
    p.model_params = sizes[i];
    p.log_value = log_a + beta * std::log(sizes[i]) + wiggle[i];
    p.log_se = 0.1 + 0.02 * i;
    p.matrices = 4;
    f.points.push_back(p);
  }
  f.params_min = sizes[0], f.params_max = sizes[4];
  return f;
}

LawSet planted_set() {
  LawSet s;
  s.kind = "momentum", s.grouping = "optype,depth:4", s.burn_in = "auto";
  s.quantiles = {0.05, 0.5};
  s.laws.push_back(planted_law("q/depth:0-0.25", 0.5, -0.25, 0.05));
  s.laws.push_back(planted_law("down/depth:0.75-1", 8.0, -0.96, 0.05));
  s.laws.push_back(planted_law("q/depth:0-0.25", 1.5, -0.2, 0.5));
  FittedLaw refused = planted_law("k/depth:0-0.25 & <late>", 0.0, 0.0, 0.05);
  refused.status = "refused", refused.reason = "2 distinct model sizes, 3 needed";
  refused.points.resize(2);
  s.laws.push_back(refused);
  return s;
}

/// One panel of the SVG read back: its pixel <-> log10 maps from the tick labels, and its marks.
struct Panel {
  std::string text;
  double x0 = 0, x_per_decade = 0, y0 = 0, y_per_decade = 0;  ///< pixel = p0 + per_decade * log10(v)

  double x_value(double px) const { return std::pow(10.0, (px - x0) / x_per_decade); }
  double y_value(double py) const { return std::pow(10.0, (py - y0) / y_per_decade); }
};

/// Fits pixel = p0 + k·exponent through every (pixel, exponent) tick; checks they are collinear.
void axis_map(const std::vector<std::pair<double, int>>& ticks, double& p0, double& k) {
  REQUIRE(ticks.size() >= 2);
  k = (ticks.back().first - ticks.front().first) / (ticks.back().second - ticks.front().second);
  p0 = ticks.front().first - k * ticks.front().second;
  for (const auto& [px, e] : ticks) CHECK(std::fabs(p0 + k * e - px) < 0.02);
}

std::vector<Panel> read_panels(const std::string& svg) {
  std::vector<Panel> panels;
  size_t at = 0;
  while ((at = svg.find("<g class=\"panel\"", at)) != std::string::npos) {
    const size_t end = svg.find("</g>", at);
    REQUIRE(end != std::string::npos);
    Panel p;
    p.text = svg.substr(at, end - at);
    at = end;
    std::vector<std::pair<double, int>> xt, yt;
    const std::regex xtick(R"re(<text class="xtick" x="([-0-9.]+)"[^>]*>1e(-?\d+)</text>)re");
    const std::regex ytick(R"re(<text class="ytick" x="[-0-9.]+" y="([-0-9.]+)"[^>]*>1e(-?\d+)</text>)re");
    for (std::sregex_iterator it(p.text.begin(), p.text.end(), xtick), e; it != e; ++it)
      xt.emplace_back(std::stod((*it)[1]), std::stoi((*it)[2]));
    for (std::sregex_iterator it(p.text.begin(), p.text.end(), ytick), e; it != e; ++it)
      yt.emplace_back(std::stod((*it)[1]) - 3, std::stoi((*it)[2]));  // labels sit 3 px under the grid line
    axis_map(xt, p.x0, p.x_per_decade);
    axis_map(yt, p.y0, p.y_per_decade);
    panels.push_back(p);
  }
  return panels;
}

std::vector<std::pair<double, double>> circles(const Panel& p) {
  std::vector<std::pair<double, double>> out;
  const std::regex c(R"re(<circle class="point" cx="([-0-9.]+)" cy="([-0-9.]+)")re");
  for (std::sregex_iterator it(p.text.begin(), p.text.end(), c), e; it != e; ++it)
    out.emplace_back(p.x_value(std::stod((*it)[1])), p.y_value(std::stod((*it)[2])));
  return out;
}

/// The vertices of the first path of `cls` ("fit", "extrapolation", "band"), as data values.
std::vector<std::pair<double, double>> path_values(const Panel& p, const std::string& cls) {
  std::vector<std::pair<double, double>> out;
  const std::regex path("<path class=\"" + cls + "\" d=\"([^\"]*)\"");
  std::smatch m;
  if (!std::regex_search(p.text, m, path)) return out;
  const std::string d = m[1];
  const std::regex vertex(R"re([ML] ?([-0-9.]+) ([-0-9.]+))re");
  for (std::sregex_iterator it(d.begin(), d.end(), vertex), e; it != e; ++it)
    out.emplace_back(p.x_value(std::stod((*it)[1])), p.y_value(std::stod((*it)[2])));
  return out;
}

double band_half_width(const FittedLaw& f, double m) {
  const double x = std::log(m);
  return kT975Dof3 * std::sqrt(f.se_log_a * f.se_log_a + 2 * x * f.cov_log_a_beta + x * x * f.se_beta * f.se_beta);
}

}  // namespace

TEST_CASE("law plot: every point, fitted line and band read back from the SVG is the law's", "[plot]") {
  const LawSet set = planted_set();
  LawPlotOptions o;
  o.target_params = 7e10;
  const std::string svg = laws_svg(set, o);
  const std::vector<Panel> panels = read_panels(svg);
  REQUIRE(panels.size() == 3);  // the three laws at q0.05 (the smallest level), file order
  for (size_t k = 0; k < 2; ++k) {
    const FittedLaw& f = set.laws[k];
    const Panel& p = panels[k];
    CHECK(p.text.find(xml_escape(f.group.name)) != std::string::npos);
    const auto pts = circles(p);
    REQUIRE(pts.size() == f.points.size());
    for (size_t i = 0; i < pts.size(); ++i) {
      CHECK(pts[i].first == Approx(f.points[i].model_params).epsilon(1e-3));
      CHECK(std::log(pts[i].second) == Approx(f.points[i].log_value).margin(1e-3));
    }
    const auto line = path_values(p, "fit");
    REQUIRE(line.size() >= 2);
    CHECK(line.front().first == Approx(f.params_min).epsilon(1e-3));
    CHECK(line.back().first == Approx(f.params_max).epsilon(1e-3));
    for (const auto& [m, q] : line) CHECK(std::log(q) == Approx(f.log_a + f.beta * std::log(m)).margin(1e-3));
    const auto extension = path_values(p, "extrapolation");
    REQUIRE(extension.size() >= 2);
    CHECK(extension.back().first == Approx(7e10).epsilon(1e-3));
    CHECK(std::log(extension.back().second) == Approx(f.log_a + f.beta * std::log(7e10)).margin(1e-3));
    // The band outline runs along the lower edge, then back along the upper edge.
    const auto band = path_values(p, "band");
    REQUIRE(band.size() == 2 * line.size());
    for (size_t i = 0; i < line.size(); ++i) {
      const double m = line[i].first, y = f.log_a + f.beta * std::log(m);
      CHECK(std::log(band[i].second) == Approx(y - band_half_width(f, m)).margin(2e-3));
      CHECK(std::log(band[band.size() - 1 - i].second) == Approx(y + band_half_width(f, m)).margin(2e-3));
    }
  }
  SECTION("a refused group shows its points and the reason, and no line") {
    const Panel& p = panels[2];
    CHECK(p.text.find("refused: 2 distinct model sizes, 3 needed") != std::string::npos);
    CHECK(p.text.find("k/depth:0-0.25 &amp; &lt;late&gt;") != std::string::npos);
    CHECK(circles(p).size() == 2);
    CHECK(path_values(p, "fit").empty());
  }
  SECTION("--quantile picks the other level's laws") {
    o.quantile_level = 0.5;
    const std::vector<Panel> q50 = read_panels(laws_svg(set, o));
    REQUIRE(q50.size() == 1);
    CHECK(std::log(circles(q50[0])[0].second) == Approx(set.laws[2].points[0].log_value).margin(1e-3));
  }
}

TEST_CASE("law plot: a level the file lacks or an implausible size is a usage error", "[plot]") {
  const LawSet set = planted_set();
  LawPlotOptions o;
  o.quantile_level = 0.25;
  CHECK_THROWS_WITH(laws_svg(set, o), Catch::Contains("has laws at 0.05, 0.5"));
  o.quantile_level = -1;
  o.target_params = 1e20;
  CHECK_THROWS_AS(laws_svg(set, o), UsageError);
  CHECK_THROWS_AS(laws_svg(LawSet{}, LawPlotOptions{}), UsageError);
}

TEST_CASE("svg helpers: decade axis ranges and XML escaping", "[plot]") {
  CHECK(log_axis_range({2e7, 1e9}) == std::pair<double, double>(1e7, 1e9));
  CHECK(log_axis_range({3e-4, 0.02, -1, NAN}) == std::pair<double, double>(1e-4, 1e-1));
  CHECK(log_axis_range({100}) == std::pair<double, double>(1e2, 1e3));
  CHECK(log_axis_range({}) == std::pair<double, double>(1, 10));
  CHECK(xml_escape("a<b & \"c\"\x01") == "a&lt;b &amp; &quot;c&quot; ");
}

TEST_CASE("muspec plot writes the figure from laws.json, bad input exits 2 and writes nothing", "[plot][cli]") {
  TempDir dir("plot");
  LawSet set = planted_set();
  const std::string laws = dir.file("laws.json"), svg = dir.file("laws.svg");
  write_laws_json(laws, set);
  const auto ok = run_muspec("plot '" + laws + "' -o '" + svg + "' --params 7e10 --per-row 2");
  CHECK(ok.exit_code == 0);
  CHECK(ok.err.empty());
  const std::vector<Panel> panels = read_panels(muspec_test::read_text(svg));
  REQUIRE(panels.size() == 3);
  CHECK(circles(panels[1]).size() == 5);
  if (std::string(MUSPEC_PYTHON).size() > 0) {  // well-formed XML, by an independent parser
    const auto xml = muspec_test::run_command(std::string(MUSPEC_PYTHON) +
                                              " -c \"import sys, xml.etree.ElementTree as E; "
                                              "print(len(E.parse(sys.argv[1]).getroot()))\" '" + svg + "'");
    CHECK(xml.exit_code == 0);
  }
  const std::string none = dir.file("none.svg");
  const auto missing_level = run_muspec("plot '" + laws + "' -o '" + none + "' --quantile 0.3");
  CHECK(missing_level.exit_code == 2);
  CHECK_THAT(missing_level.err, Catch::Contains("0.05, 0.5"));
  const auto not_laws = run_muspec("plot '" + dir.file("scan.h5") + "' -o '" + none + "'");
  CHECK(not_laws.exit_code == 2);
  CHECK_THAT(not_laws.err, Catch::Contains("scan.h5"));
  muspec_test::write_bytes(dir.file("broken.json"), "{\"format\": \"muspec.laws\", ");
  const auto broken = run_muspec("plot '" + dir.file("broken.json") + "' -o '" + none + "'");
  CHECK(broken.exit_code == 2);
  CHECK_THAT(broken.err, Catch::Contains("broken.json"));
  CHECK_FALSE(muspec_test::fs::exists(none));
}
