// Issue 14: crafted spectra.h5 files crashed or hung the store reader (fit, recommend, plan,
// ns eval): 37 of 400 random byte mutants crashed inside libhdf5, an external link to a FIFO
// hung every reader, and external links were followed silently. Now links other than hard
// links are refused before traversal, and a crash or hang inside libhdf5 stays in a child
// process (store/isolated_read.h).
#include <catch2/catch.hpp>

#include <hdf5.h>
#include <malloc.h>
#include <signal.h>

#if defined(__SANITIZE_ADDRESS__)
#define MUSPEC_TEST_LSAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MUSPEC_TEST_LSAN 1
#endif
#endif
#ifdef MUSPEC_TEST_LSAN
#include <sanitizer/lsan_interface.h>
#endif

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <stdlib.h>
#include <random>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

#include "core/error.h"
#include "fifo_unblocker.h"  // make_fifo
#include "store/isolated_read.h"
#include "store/summary_read.h"
#include "spectra/summary.h"
#include "store/spectra_store.h"
#include "test_support.h"

using muspec::SpectraFile;
using muspec::SpectrumRecord;
using muspec_test::TempDir;

namespace {

SpectrumRecord record(const std::string& name, std::vector<double> sigma) {
  SpectrumRecord r;
  r.name = r.tensor = r.parameter = name;
  r.file = "model.safetensors";
  r.rows = r.cols = static_cast<int64_t>(sigma.size());
  r.tensor_shape = {r.rows, r.cols};
  r.dtype = "F32";
  r.transform = "none";
  r.method = "svd";
  r.device = "cpu";
  r.kind = "weights";
  r.floor = 1e-12;
  double frob2 = 0;
  for (double s : sigma) frob2 += s * s;
  r.summary = muspec::summarize_spectrum(sigma, std::sqrt(frob2), r.floor, {0.1, 0.5, 0.9});
  r.sigma = std::move(sigma);
  return r;
}

/// A small valid store: three records, a few file attributes.
std::string write_small_store(const TempDir& dir) {
  SpectraFile f;
  f.attributes = {{"muspec_version", "test"}, {"command", "muspec scan model.safetensors"}};
  f.records = {record("a.weight", {0.5, 1.0, 2.0, 3.0}), record("b.weight", {0.1, 0.2}),
               record("c.weight", {1.0, 1.5, 4.0})};
  const std::string path = dir.file("small.h5");
  muspec::write_spectra_h5(path, f);
  return path;
}

/// Replaces /spectra/000000 with a link made by `make` (raw HDF5, as a crafted file would).
template <typename Make>
void replace_first_record(const std::string& path, Make make) {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  REQUIRE(H5Ldelete(f, "/spectra/000000", H5P_DEFAULT) >= 0);
  REQUIRE(make(f) >= 0);
  REQUIRE(H5Fclose(f) >= 0);
}

std::string input_error_of(const std::string& path) {
  try {
    muspec::read_spectra_h5(path);
  } catch (const muspec::InputError& e) {
    return e.what();
  }
  return "";
}

#if defined(__SANITIZE_ADDRESS__)
constexpr int kMutants = 100;  // each mutant forks a sanitized child: slower
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr int kMutants = 100;
#else
constexpr int kMutants = 400;
#endif
#else
constexpr int kMutants = 400;
#endif

}  // namespace

TEST_CASE("store: external and soft links are refused before they are followed", "[store][hostile]") {
  // A reader that followed the link would block opening the FIFO; its child is then killed at
  // this deadline and the error says "did not finish" instead of naming the link. (No thread
  // opens the FIFO's other end: a thread running while the reader forks made the ASan child
  // hang in about 1 of 6 runs.)
  ::setenv("MUSPEC_H5_READ_TIMEOUT", "5", 1);
  TempDir dir("h5link");
  const std::string fifo = dir.file("pipe.h5");
  REQUIRE(muspec_test::make_fifo(fifo));
  const std::string ext = write_small_store(dir);
  replace_first_record(ext, [&](hid_t f) {
    return H5Lcreate_external(fifo.c_str(), "/x", f, "/spectra/000000", H5P_DEFAULT, H5P_DEFAULT);
  });
  const std::string err = input_error_of(ext);
  CHECK_THAT(err, Catch::Contains("external link"));
  CHECK_THAT(err, Catch::Contains("/spectra/000000"));
  TempDir dir2("h5link");
  const std::string soft = write_small_store(dir2);
  replace_first_record(soft, [](hid_t f) { return H5Lcreate_soft("/spectra/000001", f, "/spectra/000000", H5P_DEFAULT, H5P_DEFAULT); });
  CHECK_THAT(input_error_of(soft), Catch::Contains("soft link"));
  ::unsetenv("MUSPEC_H5_READ_TIMEOUT");
}

namespace {

using muspec::ChildChannel;
using Received = std::vector<std::string>;

/// read_in_child on a fixed path, collecting what `receive` got; `finished` says what it returned.
struct ChildRun {
  Received got;
  bool finished = false;
  void operator()(const std::function<void(ChildChannel&)>& read, double timeout_s = 10) {
    finished = muspec::read_in_child("/some/store.h5", read, [&](std::string&& m) { got.push_back(std::move(m)); }, timeout_s);
  }
};

/// The InputError's what() from running `read` in a child, or "" when none was thrown.
std::string child_error(const std::function<void(ChildChannel&)>& read, double timeout_s = 10) {
  try {
    ChildRun()(read, timeout_s);
  } catch (const muspec::InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("store isolation: the child's messages come back whole and in order", "[store][hostile]") {
  // Sizes that cross the parent's 64 KiB read chunks and frame headers at every alignment.
  std::mt19937_64 rng(7);
  Received sent;
  for (size_t size : {size_t{0}, size_t{1}, size_t{8}, size_t{9}, size_t{65535}, size_t{65536}, size_t{65537}, size_t{3} << 20}) {
    std::string m(size, '\0');
    for (auto& c : m) c = static_cast<char>(rng());
    sent.push_back(std::move(m));
  }
  for (int i = 0; i < 2000; ++i) sent.push_back(std::to_string(i));  // many small ones
  ChildRun run;
  run([&](ChildChannel& ch) {
    for (const auto& m : sent) ch.send(m);
  });
  CHECK(run.finished);
  REQUIRE(run.got.size() == sent.size());
  for (size_t i = 0; i < sent.size(); ++i) CHECK((run.got[i] == sent[i]));
  ChildRun none;
  none([](ChildChannel&) {});
  CHECK(none.finished);
  CHECK(none.got.empty());
}

TEST_CASE("store isolation: the child's error comes back whole, crashes and other failures are told apart", "[store][hostile]") {
  using muspec::InputError;
  const std::string path = "/some/store.h5";
  int touched = 0;
  ChildRun run;
  try {
    run([&](ChildChannel& ch) {
      ++touched;
      ch.send("first record");
      throw InputError("elsewhere.h5", "/spectra/000001", "bad attribute 'rows'");
    });
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(e.file() == path);  // the file the caller asked about
    CHECK(e.tensor() == "/spectra/000001");
    CHECK(e.reason() == "bad attribute 'rows'");
  }
  CHECK(touched == 0);  // it ran in the child
  CHECK(run.got == Received{"first record"});  // what came before the error was handed over
  // A reason longer than the report's cap comes back cut, not lost.
  const std::string long_reason(100000, 'r');
  try {
    ChildRun()([&](ChildChannel&) { throw InputError(path, "", long_reason); });
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(e.reason().size() >= 60000);
    CHECK(e.reason().size() < long_reason.size());
    CHECK(long_reason.compare(0, e.reason().size(), e.reason()) == 0);
  }
  // Any other exception is an InputError too: this process never reads the file instead.
  CHECK_THAT(child_error([](ChildChannel& ch) {
               ch.send("partial");
               throw std::runtime_error("out of something");
             }),
             Catch::Contains("/some/store.h5: reading it failed: out of something"));
  CHECK_THAT(child_error([](ChildChannel&) { throw 42; }), Catch::Contains("reading it failed"));
  // A crash and a hang stay in the child.
  CHECK_THAT(child_error([](ChildChannel& ch) { ch.send("x"); std::abort(); }), Catch::Contains("libhdf5 crashed"));
  {  // a handler of this process (the scan's SIGBUS guard, say) does not run in the child
    struct sigaction quiet {}, previous {};
    quiet.sa_handler = [](int) { ::_exit(0); };  // would pass the crash off as a finished read
    ::sigemptyset(&quiet.sa_mask);
    REQUIRE(::sigaction(SIGSEGV, &quiet, &previous) == 0);
    const std::string what = child_error([](ChildChannel&) { ::raise(SIGSEGV); });
    ::sigaction(SIGSEGV, &previous, nullptr);
    CHECK_THAT(what, Catch::Contains("libhdf5 crashed reading it (Segmentation fault)"));
  }
  CHECK_THAT(child_error([](ChildChannel&) { for (;;) ::pause(); }, 1), Catch::Contains("did not finish"));
}

TEST_CASE("store isolation: bytes from the child that are not messages are refused", "[store][hostile]") {
  auto raw = [](std::string bytes) {
    return [bytes](ChildChannel& ch) {
      if (::write(ch.fd(), bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) std::abort();
    };
  };
  auto header = [](char tag, uint64_t length) {  // the documented layout, written out here
    std::string h(1, tag);
    for (int i = 0; i < 8; ++i) h.push_back(static_cast<char>(length >> (8 * i)));
    return h;
  };
  CHECK_THAT(child_error(raw(header('Q', 0))), Catch::Contains("sent an unknown report"));
  CHECK_THAT(child_error(raw(header('M', muspec::kMaxChildMessage + 1))), Catch::Contains("sent a report of 1073741825 bytes"));
  CHECK_THAT(child_error(raw(header('F', 1) + "x")), Catch::Contains("sent a report of 1 bytes"));
  CHECK_THAT(child_error(raw(header('M', 10) + "short")), Catch::Contains("sent a report cut short"));
  CHECK_THAT(child_error(raw("M")), Catch::Contains("sent a report cut short"));
  // After its last report nothing may follow: the finished frame the child adds is one too many.
  CHECK_THAT(child_error(raw(header('F', 0))), Catch::Contains("sent bytes after its last report"));
  CHECK_THAT(child_error([](ChildChannel&) { ::_exit(0); }), Catch::Contains("ended without a report"));
  // The documented layout is what child_frame writes.
  CHECK(muspec::child_frame('M', "abc") == header('M', 3) + "abc");
  // A message the receiver cannot use kills the child (which would otherwise run on) and propagates.
  struct Refused {};
  CHECK_THROWS_AS(muspec::read_in_child(
                      "/some/store.h5", [](ChildChannel& ch) { ch.send("record"); for (;;) ::pause(); },
                      [](std::string&&) { throw Refused{}; }, 30),
                  Refused);
}

namespace {

/// Bytes the C heap holds now (glibc), for telling whether reads keep memory.
size_t heap_in_use() { return ::mallinfo2().uordblks; }

/// libhdf5 keeps what it had allocated on some failed reads (issue 14's fuzz_store finding). The
/// in-process reads below do that on purpose; the leak checker of the ASan build is told so.
struct ExpectedLibraryLeaks {
#ifdef MUSPEC_TEST_LSAN
  ExpectedLibraryLeaks() { __lsan_disable(); }
  ~ExpectedLibraryLeaks() { __lsan_enable(); }
#endif
};

}  // namespace

TEST_CASE("store isolation: a failed read is not repeated here, and gives an in-process read's error", "[store][hostile]") {
  // Mutants whose reading fails with an error (not a crash or hang, so they are safe to read in
  // this process too): the child's error must be the text an in-process read gives.
  TempDir dir("h5same");
  const std::string original = muspec_test::read_text(write_small_store(dir));
  ::setenv("MUSPEC_H5_READ_TIMEOUT", "2", 1);
  std::vector<std::string> failing;
  for (int seed = 1; seed <= 150; ++seed) {
    std::mt19937_64 rng(static_cast<uint64_t>(1000 + seed));
    std::string bytes = original;
    for (int k = 0; k < 3; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    const std::string path = dir.file("mutant" + std::to_string(seed) + ".h5");
    muspec_test::write_bytes(path, bytes);
    const std::string isolated = input_error_of(path);
    if (isolated.empty() || isolated.find("libhdf5 crashed") != std::string::npos ||
        isolated.find("libhdf5 failed") != std::string::npos || isolated.find("did not finish") != std::string::npos)
      continue;  // read fine, or unsafe to read in this process
    ::setenv("MUSPEC_H5_ISOLATION", "off", 1);
    std::string direct;
    {
      [[maybe_unused]] ExpectedLibraryLeaks expected;
      direct = input_error_of(path);
    }
    ::unsetenv("MUSPEC_H5_ISOLATION");
    INFO("seed " << seed);
    CHECK(direct == isolated);
    failing.push_back(path);
  }
  CHECK(failing.size() >= 10);
  if (!muspec_test::kSanitized) {
    // What libhdf5 keeps on a failed read stays in the child: reading the failing files again
    // leaves this process's heap as it was, while the same reads in-process grow it.
    auto heap_growth = [&](bool isolated, int passes) {
      if (!isolated) ::setenv("MUSPEC_H5_ISOLATION", "off", 1);
      for (const auto& p : failing) input_error_of(p);  // caches and free lists settle
      const size_t before = heap_in_use();
      for (int k = 0; k < passes; ++k)
        for (const auto& p : failing) input_error_of(p);
      ::unsetenv("MUSPEC_H5_ISOLATION");
      return static_cast<long>(heap_in_use()) - static_cast<long>(before);
    };
    const long isolated_growth = heap_growth(true, 3);
    const long direct_growth = heap_growth(false, 3);
    WARN("heap growth over 3 passes of " << failing.size() << " failing reads: " << isolated_growth
                                         << " bytes isolated, " << direct_growth << " bytes in-process");
    CHECK(isolated_growth <= 1024);  // nothing kept (a few bytes of slack for the C library)
    CHECK(direct_growth > 1000);  // the check can fail: in-process reads do keep memory
  }
  ::unsetenv("MUSPEC_H5_READ_TIMEOUT");
}

TEST_CASE("store isolation: a damaged /summary column is read around, and its failing read runs only in the child", "[store][hostile]") {
  // fuzz_store's seed store with one byte changed (offset 8677 to 0x3f): the params_source
  // column's strings cannot all be read, so the column read fails part-way and the reader
  // falls back to reading record by record, which succeeds. libhdf5 keeps the strings it had
  // converted before the failure (LeakSanitizer: 1-byte blocks from H5T__conv_vlen); fuzz_store
  // found it (2026-12-06). The child now sends the records it read: this process runs no libhdf5.
  const std::string path = muspec_test::source_dir() + "/tests/fixtures/stores/summary-column-read-fails.h5";
  const SpectraFile isolated = muspec::read_spectra_h5(path);
  REQUIRE(isolated.records.size() == 3);
  ::setenv("MUSPEC_H5_SUMMARY_READ", "off", 1);  // the record-by-record read, on purpose
  const SpectraFile by_record = muspec::read_spectra_h5(path);
  ::unsetenv("MUSPEC_H5_SUMMARY_READ");
  REQUIRE(by_record.records.size() == 3);
  for (size_t i = 0; i < 3; ++i) CHECK(isolated.records[i].name == by_record.records[i].name);
  // The failing column read ran in the child only; in-process (isolation off) it runs here.
  const uint64_t before = muspec::store_detail::column_read_failures();
  muspec::read_spectra_h5(path);
  CHECK(muspec::store_detail::column_read_failures() == before);
  ::setenv("MUSPEC_H5_ISOLATION", "off", 1);
  {
    [[maybe_unused]] ExpectedLibraryLeaks expected;
    muspec::read_spectra_h5(path);
  }
  ::unsetenv("MUSPEC_H5_ISOLATION");
  CHECK(muspec::store_detail::column_read_failures() == before + 1);  // the check can fail
}

TEST_CASE("store: seeded byte mutants of a small spectra.h5 never crash or hang the reader", "[store][hostile]") {
  TempDir dir("h5mut");
  const std::string original = muspec_test::read_text(write_small_store(dir));
  const std::string path = dir.file("mutant.h5");
  const char* env = std::getenv("MUSPEC_TEST_H5_MUTANTS");
  const int count = env != nullptr ? std::atoi(env) : kMutants;
  // Some mutants make libhdf5 loop forever: the reader's child is killed at this deadline.
  ::setenv("MUSPEC_H5_READ_TIMEOUT", "1", 1);
  int read_ok = 0, refused = 0, crashed = 0, hung = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int seed = 1; seed <= count; ++seed) {
    std::mt19937_64 rng(static_cast<uint64_t>(seed));
    std::string bytes = original;
    const int flips = 1 + static_cast<int>(rng() % 8);
    for (int k = 0; k < flips; ++k) bytes[rng() % bytes.size()] = static_cast<char>(rng());
    if (seed % 10 == 0) bytes.resize(rng() % bytes.size());  // some truncated as well
    muspec_test::write_bytes(path, bytes);
    INFO("seed " << seed);
    try {
      muspec::read_spectra_h5(path);
      ++read_ok;
    } catch (const muspec::InputError& e) {
      ++refused;
      CHECK(e.file() == path);
      const std::string what = e.what();
      crashed += what.find("libhdf5 crashed") != std::string::npos || what.find("libhdf5 failed") != std::string::npos;
      hung += what.find("did not finish") != std::string::npos;
    }
  }
  ::unsetenv("MUSPEC_H5_READ_TIMEOUT");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(read_ok + refused == count);
  CHECK(refused > 0);
  WARN(count << " mutants: " << read_ok << " read, " << refused << " refused (" << crashed << " crashed libhdf5, " << hung
             << " hung it), " << seconds << " s");
}

TEST_CASE("cli: fit on a spectra.h5 with an external link to a FIFO exits 2 instead of hanging", "[cli][store][hostile]") {
  TempDir dir("h5cli");
  const std::string fifo = dir.file("pipe.h5");
  REQUIRE(muspec_test::make_fifo(fifo));
  const std::string store = write_small_store(dir);
  replace_first_record(store, [&](hid_t f) {
    return H5Lcreate_external(fifo.c_str(), "/x", f, "/spectra/000000", H5P_DEFAULT, H5P_DEFAULT);
  });
  const auto r = muspec_test::run_command("timeout 30 '" + std::string(MUSPEC_BINARY) + "' fit '" + store + "' -o '" +
                                          dir.file("laws.json") + "' </dev/null");
  INFO(r.err);
  CHECK(r.exit_code == 2);  // before: 124 (hung until timeout killed it)
  CHECK_THAT(r.err, Catch::Contains("external link"));
}
