// Shared assertion for bad-input tests: `fn` must throw muspec::InputError naming `file` and
// `tensor` (empty for a whole-file error), with every string of `parts` in its message.
#pragma once

#include <catch2/catch.hpp>

#include <initializer_list>
#include <string>

#include "core/error.h"

namespace muspec_test {

template <typename Fn>
void expect_input_error(Fn fn, const std::string& file, const std::string& tensor,
                        std::initializer_list<const char*> parts) {
  try {
    fn();
    FAIL("no error for " << file);
  } catch (const muspec::InputError& e) {
    INFO(e.what());
    CHECK(e.file() == file);
    CHECK(e.tensor() == tensor);
    for (const char* p : parts) CHECK(std::string(e.what()).find(p) != std::string::npos);
  }
}

}  // namespace muspec_test
