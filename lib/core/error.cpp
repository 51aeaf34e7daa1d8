#include "core/error.h"

#include <cstdio>
#include <cstdlib>

namespace muspec {

namespace {
std::string format_input_error(const std::string& file, const std::string& tensor,
                               const std::string& reason) {
  std::string msg = file.empty() ? std::string("<input>") : file;
  if (!tensor.empty()) msg += ": tensor '" + tensor + "'";
  msg += ": " + reason;
  return msg;
}
}  // namespace

InputError::InputError(std::string file, std::string tensor, std::string reason)
    : Error(format_input_error(file, tensor, reason)),
      file_(std::move(file)),
      tensor_(std::move(tensor)),
      reason_(std::move(reason)) {}

void assertion_failed(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "muspec: internal error: assertion '%s' failed at %s:%d\n", expr, file,
               line);
  std::abort();
}

}  // namespace muspec
