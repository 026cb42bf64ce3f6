#pragma once
// The web page's files, read into memory once at start, so serving them never blocks an io thread.
// Immutable after Load; thread-safe to read.

#include <map>
#include <string>

#include "absl/status/status.h"

namespace chat::gateway {

class StaticFiles {
 public:
  struct File {
    std::string content_type;
    std::string body;
  };

  // Loads the regular files directly inside `dir` (no subfolders, no dotfiles).
  absl::Status Load(const std::string& dir);
  // `path` is the URL path; "/" means index.html. Null when there is no such file.
  const File* Find(std::string_view path) const;
  size_t size() const { return files_.size(); }

 private:
  std::map<std::string, File, std::less<>> files_;
};

}  // namespace chat::gateway
