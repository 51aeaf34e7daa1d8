// core/regular_file: inputs are checked by type before open(), so a FIFO, socket, device or
// directory given as an input is refused with a reason and never blocks the process.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "core/regular_file.h"
#include "fifo_unblocker.h"
#include "input_error_check.h"
#include "test_support.h"

using muspec::read_regular_file;
using muspec_test::expect_input_error;

namespace {

/// A listening-less AF_UNIX socket bound at `path`; returns its descriptor (or -1).
int bind_socket(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (fd < 0 || path.size() >= sizeof addr.sun_path) return -1;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return ::close(fd), -1;
  return fd;
}

}  // namespace

TEST_CASE("regular file: contents of a regular file, and its size limit", "[core][files]") {
  muspec_test::TempDir dir("regular");
  const std::string f = dir.file("a.txt");
  muspec_test::write_bytes(f, std::string(100000, 'x') + "end");
  CHECK(read_regular_file(f) == std::string(100000, 'x') + "end");
  muspec_test::write_bytes(f, "");
  CHECK(read_regular_file(f).empty());
  muspec_test::write_bytes(f, "12345");
  expect_input_error([&] { read_regular_file(f, 4); }, f, "", {"larger than 4 bytes"});
}

TEST_CASE("regular file: FIFOs, sockets, devices and directories are refused by type", "[core][files][bad-input]") {
  muspec_test::TempDir dir("regular");
  const std::string fifo = dir.file("pipe"), sock = dir.file("sock");
  REQUIRE(muspec_test::make_fifo(fifo));
  {
    muspec_test::FifoUnblocker unblock(fifo);  // old code: released after a wait, then "not a regular file"
    expect_input_error([&] { read_regular_file(fifo); }, fifo, "", {"is a FIFO, not a regular file"});
  }
  const int s = bind_socket(sock);
  REQUIRE(s >= 0);
  expect_input_error([&] { read_regular_file(sock); }, sock, "", {"is a socket, not a regular file"});
  ::close(s);
  expect_input_error([] { read_regular_file("/dev/null"); }, "/dev/null", "", {"is a character device"});
  expect_input_error([&] { read_regular_file(dir.path().string()); }, dir.path().string(), "", {"is a directory"});
  expect_input_error([&] { read_regular_file(dir.file("none")); }, dir.file("none"), "", {"No such file"});
}
