// The stylesheet and script inlined into the HTML report (html_report.h).
#pragma once

namespace muspec::analysis {

const char* report_css();
/// Plain JS: click a column header to sort a table (again: reverse); a filter box over names;
/// a matrix name draws its spectrum. The URL hash "#sort=KEY:asc|desc" sorts every table on
/// load and "#spectrum=I" opens record I's spectrum (docs/report.md).
const char* report_js();

}  // namespace muspec::analysis
