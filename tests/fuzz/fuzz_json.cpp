// libFuzzer target: the JSON inputs muspec reads from users — laws.json (`predict`, `plot`,
// `recommend --laws`), schedule files (`--family`, `-s`, `ns show`), group files (`fit
// --group`), ns_config.json (validated by ns_config_problem) and model config.json. The input is
// written to a scratch .json file and handed to each reader. Expected failures are
// muspec::Error; a crash, a sanitizer report, any other exception (an nlohmann type_error
// escaping a reader would reach the user as an unexplained message) or a hang is a finding.
// Build and run: tests/fuzz/README.md.
#include <cstdint>
#include <exception>
#include <functional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/json_limits.h"
#include "fuzz_common.h"
#include "laws/grouping.h"
#include "laws/laws.h"
#include "model/model_config.h"
#include "ns/schedule.h"
#include "configs/ns_config.h"

namespace {

using namespace muspec;
using namespace muspec::analysis;
using muspec::ns::load_schedule_file;
using namespace muspec_fuzz;  // finding, note, temp_path, write_file: fuzz_common.h

void expect_errors_only(const char* reader, const std::function<void()>& read) {
  try {
    read();
  } catch (const Error& e) {
    note(std::string(reader) + ": " + e.what());
  } catch (const std::exception& e) {
    finding(std::string(reader) + " threw something other than muspec::Error: " + e.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = temp_path(".json");
  write_file(path, data, size);
  expect_errors_only("read_laws_json", [&] { g_sink = read_laws_json(path).laws.size(); });
  expect_errors_only("load_schedule_file", [&] { g_sink = load_schedule_file(path).name.size(); });
  expect_errors_only("read_group_file", [&] { g_sink = read_group_file(path).size(); });
  expect_errors_only("ns_config_problem", [&] { g_sink = ns_config_problem(read_json_file(path)).size(); });
  expect_errors_only("model_config_from_json", [&] { g_sink = model_config_from_json(read_json_file(path), path).num_layers; });
  return 0;
}
