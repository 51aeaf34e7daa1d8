#include "core/output_guard.h"

#include <sys/stat.h>

#include <filesystem>

#include "core/error.h"

namespace muspec {

namespace fs = std::filesystem;

namespace {

struct Identity {
  fs::path resolved;  ///< absolute, symlinks of the existing part resolved, "." and ".." removed
  bool exists = false, is_dir = false;
  dev_t dev = 0;
  ino_t ino = 0;
};

Identity identify(const std::string& path) {
  Identity id;
  std::error_code ec;
  id.resolved = fs::weakly_canonical(fs::absolute(path, ec), ec);
  if (ec) id.resolved = fs::absolute(path, ec).lexically_normal();
  struct stat st;
  if (::stat(path.c_str(), &st) == 0) {
    id.exists = true;
    id.is_dir = S_ISDIR(st.st_mode);
    id.dev = st.st_dev;
    id.ino = st.st_ino;
  }
  return id;
}

bool same_file(const Identity& a, const Identity& b) {
  if (a.exists && b.exists && a.dev == b.dev && a.ino == b.ino) return true;
  return a.resolved == b.resolved;
}

/// True when `inner` is strictly below `dir` (component-wise, so /a/bc is not inside /a/b).
bool lies_inside(const fs::path& inner, const fs::path& dir) {
  auto d = dir.begin(), i = inner.begin();
  for (; d != dir.end(); ++d, ++i)
    if (d->empty()) break;  // a trailing separator ends the directory
    else if (i == inner.end() || *i != *d) return false;
  return i != inner.end();
}

std::string quoted(const NamedPath& p) { return p.option + " '" + p.path + "'"; }

}  // namespace

void refuse_clobbering(const std::vector<NamedPath>& inputs, const std::vector<NamedPath>& outputs,
                       const ReadsInside& reads_inside) {
  std::vector<Identity> in_ids;
  for (const auto& in : inputs) in_ids.push_back(identify(in.path));
  std::vector<std::pair<const NamedPath*, Identity>> seen;
  for (const auto& out : outputs) {
    if (out.path.empty()) continue;
    const Identity o = identify(out.path);
    for (size_t k = 0; k < inputs.size(); ++k) {
      if (inputs[k].path.empty()) continue;  // an option not given
      if (same_file(o, in_ids[k]))
        throw UsageError("output " + quoted(out) + " is the input " + quoted(inputs[k]) +
                         "; refusing to overwrite an input (choose another output path)");
      if (in_ids[k].is_dir && reads_inside && lies_inside(o.resolved, in_ids[k].resolved) && reads_inside(out.path))
        throw UsageError("output " + quoted(out) + " lies inside the input directory " + quoted(inputs[k]) +
                         " and would replace a file this command reads (choose another output path)");
    }
    for (const auto& [other, id] : seen)
      if (same_file(o, id))
        throw UsageError("outputs " + quoted(*other) + " and " + quoted(out) +
                         " are the same file; each output needs its own path");
    seen.emplace_back(&out, o);
  }
}

}  // namespace muspec
