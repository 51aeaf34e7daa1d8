// Issue 14: pickles that name code-running callables (timeit, pydoc, pickle.loads, os.system by
// a dotted path, torch.storage._load_from_bytes) were read without a word. muspec never calls
// them, but a user who later runs torch.load on the file would: muspec warns, once per file.
#include <catch2/catch.hpp>

#include <string>

#include "io/pickle.h"
#include "io/pickle_danger.h"
#include "test_support.h"

namespace pk = muspec::pickle;

TEST_CASE("pickle danger: code-running callables are recognised, data constructors are not", "[pickle][danger]") {
  for (const auto& [m, n] : std::initializer_list<std::pair<const char*, const char*>>{
           {"timeit", "timeit"}, {"pydoc", "pipepager"}, {"pickle", "loads"}, {"_pickle", "loads"},
           {"posixpath", "os.system"}, {"os.path", "os.system"}, {"torch.storage", "_load_from_bytes"},
           {"builtins", "eval"}, {"builtins", "getattr.__self__.exec"}, {"subprocess", "Popen"},
           {"numpy.testing._private.utils", "runstring"}, {"mymodule", "system"}})
    CHECK(pk::dangerous_callable(m, n) == std::string(m) + "." + n);
  for (const auto& [m, n] : std::initializer_list<std::pair<const char*, const char*>>{
           {"torch._utils", "_rebuild_tensor_v2"}, {"collections", "OrderedDict"}, {"builtins", "set"},
           {"builtins", "getattr"}, {"torch", "FloatStorage"}, {"numpy.core.multiarray", "_reconstruct"},
           {"__main__", "TrainConfig"}, {"torch.nn.parameter", "Parameter"}})
    CHECK(pk::dangerous_callable(m, n).empty());
}

TEST_CASE("pickle danger: a log collects each callable once, only while it lives", "[pickle][danger]") {
  // GLOBAL timeit.timeit twice, GLOBAL collections.OrderedDict, as a tuple; STOP.
  const std::string p = "\x80\x02(ctimeit\ntimeit\nctimeit\ntimeit\nccollections\nOrderedDict\nt.";
  const auto* bytes = reinterpret_cast<const uint8_t*>(p.data());
  {
    pk::DangerousCallableLog log;
    pk::parse(bytes, p.size());
    REQUIRE(log.names().size() == 1);
    CHECK(log.names()[0] == "timeit.timeit");
  }
  pk::DangerousCallableLog later;
  CHECK(later.names().empty());
}

TEST_CASE("cli: a checkpoint whose pickle names timeit is read, with one warning", "[cli][pickle][danger]") {
  const auto r = muspec_test::run_muspec("scan '" + muspec_test::fixture("hostile_calls/calls_timeit.pt") + "' -q --device cpu");
  INFO(r.err);
  CHECK(r.exit_code == 0);
  const std::string w = "muspec: warning: ";
  REQUIRE(r.err.find(w) != std::string::npos);
  CHECK(r.err.find(w, r.err.find(w) + 1) == std::string::npos);  // once per file
  CHECK(r.err.find("timeit.timeit") != std::string::npos);
  CHECK(r.err.find("never runs pickled code") != std::string::npos);
}
