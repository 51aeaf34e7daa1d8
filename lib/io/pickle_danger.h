// Callables that a pickle names only to run code when Python's own unpickler loads it.
#pragma once

#include <string>
#include <vector>

namespace muspec::pickle {

/// "os.system", "timeit.timeit", ... when `module`.`name` is a callable known to execute code,
/// spawn processes, touch files or unpickle nested data (which may do any of those) when
/// Python's pickle calls it; "" otherwise. Dotted names are resolved the way pickle protocol 4
/// resolves them (`posixpath` + `os.system` is os.system). muspec never calls anything: this
/// only lets it warn that `torch.load(weights_only=False)` on the file would.
std::string dangerous_callable(const std::string& module, const std::string& name);

/// While alive, collects (each once, in first-seen order) the dangerous callables named by the
/// pickles parsed on this thread, e.g. around opening one file, to warn once for that file.
/// Logs nest: an inner log also feeds the outer one.
class DangerousCallableLog {
 public:
  DangerousCallableLog();
  ~DangerousCallableLog();
  DangerousCallableLog(const DangerousCallableLog&) = delete;
  DangerousCallableLog& operator=(const DangerousCallableLog&) = delete;
  const std::vector<std::string>& names() const { return names_; }

  /// Called by the pickle reader for every global it creates.
  static void note(const std::string& module, const std::string& name);

 private:
  DangerousCallableLog* outer_;
  std::vector<std::string> names_;
};

}  // namespace muspec::pickle
