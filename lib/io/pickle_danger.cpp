#include "io/pickle_danger.h"

#include <algorithm>
#include <set>
#include <vector>

namespace muspec::pickle {

namespace {

std::vector<std::string> split_dots(const std::string& s) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t dot = s.find('.', start);
    parts.push_back(s.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) return parts;
    start = dot + 1;
  }
}

/// Modules any of whose callables can run code, processes, or other pickles.
bool dangerous_module(const std::string& m) {
  static const std::set<std::string> kModules = {
      "os", "posix", "nt", "sys", "subprocess", "_posixsubprocess", "pty", "commands", "shutil", "socket",
      "importlib", "runpy", "builtins", "__builtin__", "code", "codeop", "timeit", "pydoc", "pdb", "bdb",
      "profile", "cProfile", "trace", "ctypes", "multiprocessing", "webbrowser", "pickle", "_pickle", "cPickle",
      "dill", "marshal", "shelve", "imp", "zipimport", "asyncio", "platform"};
  return kModules.count(m) != 0;
}

/// Single callables of otherwise harmless modules.
bool dangerous_function(const std::string& qualified) {
  static const std::set<std::string> kFunctions = {
      "torch.storage._load_from_bytes", "torch.load", "torch.serialization.load", "torch._C._load_for_lite_interpreter",
      "torch.jit.load", "numpy.load", "numpy.testing._private.utils.runstring", "operator.attrgetter",
      "operator.methodcaller", "functools.partial", "types.FunctionType", "types.CodeType", "copyreg._reconstructor"};
  return kFunctions.count(qualified) != 0;
}

/// Builtins that data-only pickles use (pickle.cpp's allowed list): naming them is fine.
bool harmless_builtin(const std::string& name) {
  static const std::set<std::string> kData = {"set", "frozenset", "bytearray", "complex", "slice", "dict", "list",
                                              "tuple", "int", "float", "str", "bool", "bytes", "unicode", "long",
                                              "object", "getattr"};
  return kData.count(name) != 0;
}

}  // namespace

std::string dangerous_callable(const std::string& module, const std::string& name) {
  const std::string qualified = module + "." + name;
  std::vector<std::string> parts = split_dots(qualified);
  const bool builtins = module == "builtins" || module == "__builtin__";
  if (builtins && name.find('.') == std::string::npos && harmless_builtin(name)) return "";
  if (dangerous_function(qualified)) return qualified;
  // Any dotted component that is a dangerous module: os.system, posixpath.os.system,
  // subprocess.Popen, pickle.loads, timeit.timeit, ...
  for (const auto& p : parts)
    if (dangerous_module(p)) return qualified;
  // The classic names, under any module (a wrapper module re-exporting them).
  for (const char* last : {"system", "popen", "exec", "eval", "execfile", "__import__", "spawnv", "spawnl", "execv",
                           "execve", "check_call", "check_output", "Popen", "getoutput", "getstatusoutput"})
    if (parts.back() == last) return qualified;
  return "";
}

namespace {
thread_local DangerousCallableLog* t_log = nullptr;
}  // namespace

DangerousCallableLog::DangerousCallableLog() : outer_(t_log) { t_log = this; }

DangerousCallableLog::~DangerousCallableLog() { t_log = outer_; }

void DangerousCallableLog::note(const std::string& module, const std::string& name) {
  if (t_log == nullptr) return;
  const std::string d = dangerous_callable(module, name);
  if (d.empty()) return;
  for (DangerousCallableLog* log = t_log; log != nullptr; log = log->outer_)
    if (std::find(log->names_.begin(), log->names_.end(), d) == log->names_.end()) log->names_.push_back(d);
}

}  // namespace muspec::pickle
