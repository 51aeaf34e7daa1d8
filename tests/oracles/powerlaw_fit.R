# Oracle for tests/test_layer_metrics.cpp: the Clauset-Shalizi-Newman continuous power-law fit
# by the R package poweRlaw (Debian r-cran-powerlaw), an implementation independent of muspec's.
# Usage: Rscript powerlaw_fit.R DATA_FILE...   (one value per line, any order)
# Prints one line per file: xmin alpha D ntail  (%.17g).
# xmax = Inf: poweRlaw's default xmax = 1e5 would drop candidates and tail points above 1e5.
# alpha: estimate_xmin's own alpha comes from L-BFGS-B started at the whole data's estimate; at
# the chosen xmin, estimate_pars starts from the closed form, so alpha and D below are the MLE's.
#
# Rscript powerlaw_fit.R --truncated DATA_FILE...: the MLE of alpha for the power law truncated
# to [min x, max x], by R's optimize() on the log-likelihood written out here. Prints alpha.
args = commandArgs(trailingOnly = TRUE)
if (length(args) > 0 && args[1] == "--truncated") {
  for (path in args[-1]) {
    x = scan(path, quiet = TRUE)
    lo = min(x); hi = max(x); n = length(x); slx = sum(log(x))
    nll = function(a) -(n * log((a - 1) / (lo^(1 - a) - hi^(1 - a))) - a * slx)
    cat(sprintf("%.17g\n", optimize(nll, c(-4.0001, 9), tol = 1e-12)$minimum))
  }
  quit(status = 0)
}
suppressPackageStartupMessages(library(poweRlaw))
# poweRlaw 0.70.6's continuous CDF (pplcon) sets cdf[q < round(xmin)] = 0, a rule meant for
# discrete data: for a non-integer xmin >= 0.5 it zeroes the model CDF over [xmin, round(xmin))
# and inflates D. alpha and D are scale-invariant, so the data are scaled by a power of two
# (exact in floating point) to values >= 2^40, where that interval holds no other data point;
# xmin is scaled back.
for (path in args) {
  x = scan(path, quiet = TRUE)
  scale = 2^ceiling(40 - log2(min(x)))
  x = x * scale
  m = conpl$new(x)
  est = suppressMessages(estimate_xmin(m, xmax = Inf))
  m$setXmin(est$xmin)
  m$setPars(estimate_pars(m)$pars)
  d = get_distance_statistic(m, xmax = Inf)
  cat(sprintf("%.17g %.17g %.17g %d %.17g %.17g\n", est$xmin / scale, m$pars, d, as.integer(est$ntail), est$pars, est$gof))
}
