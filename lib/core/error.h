// Error types shared by every muspec module.
//
// Two tiers (see docs/architecture.md):
//  * MUSPEC_ASSERT: an internal invariant; a failure is a bug and aborts with file/line.
//  * exceptions derived from muspec::Error: problems with the user's input or environment.
//    Library code throws them; only the CLI decides how to report them and which exit code
//    to use.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

/// Default symbol visibility for types whose identity must be shared with the CUDA plugin,
/// which is compiled with hidden visibility: an exception thrown in the plugin is caught in
/// the core by type, so both must see one typeinfo.
#define MUSPEC_SHARED_TYPE __attribute__((visibility("default")))

namespace muspec {

/// Base class of every error muspec reports to a user.
class MUSPEC_SHARED_TYPE Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A file (or a tensor inside it) is malformed, truncated, unsupported or unsafe.
/// The message always names the file and, when known, the tensor.
class MUSPEC_SHARED_TYPE InputError : public Error {
 public:
  InputError(std::string file, std::string tensor, std::string reason);
  const std::string& file() const { return file_; }
  const std::string& tensor() const { return tensor_; }  ///< empty when the whole file is bad
  const std::string& reason() const { return reason_; }

 private:
  std::string file_, tensor_, reason_;
};

/// The caller asked for something invalid (bad option value, impossible combination).
class MUSPEC_SHARED_TYPE UsageError : public Error {
 public:
  using Error::Error;
};

/// A numerical routine failed (e.g. LAPACK did not converge). Names the matrix.
class MUSPEC_SHARED_TYPE NumericalError : public Error {
 public:
  using Error::Error;
};

/// A feature that this build does not contain (e.g. "built without CUDA").
class MUSPEC_SHARED_TYPE NotAvailableError : public Error {
 public:
  using Error::Error;
};

[[noreturn]] void assertion_failed(const char* expr, const char* file, int line);

/// Checked unsigned arithmetic for sizes read from untrusted files.
/// Returns false on overflow and leaves *out unspecified.
inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}
inline bool checked_add(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_add_overflow(a, b, out);
}

}  // namespace muspec

#define MUSPEC_ASSERT(expr) \
  ((expr) ? static_cast<void>(0) : ::muspec::assertion_failed(#expr, __FILE__, __LINE__))
