// Internal to config/: collects located error and warning messages while a
// config loads.
//
// Every problem becomes one line "NAME:LINE: key.path: what". The decoder
// records where each key was written (NoteLine) so that checks made after
// decoding, which only see the Config, can still point at the right line.
// Not thread-safe; one instance per load.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace turnkey::config {

class Diagnostics {
 public:
  explicit Diagnostics(std::string source_name) : source_name_(std::move(source_name)) {}

  // Remembers that `path` was written on `line` (1-based).
  void NoteLine(const std::string& path, int line);
  // Line of `path` or, if it was not written, of its nearest written
  // ancestor ("a.b[2].c" -> "a.b[2]" -> "a.b" -> "a"); 0 if none was (the
  // value is a default).
  int LineOf(std::string_view path) const;

  // Records a problem with `path` at `line` (0 is shown as 1). An empty path
  // means the document itself.
  void Error(int line, std::string_view path, std::string_view what);
  // Records a problem with `path` at LineOf(path).
  void ErrorAt(std::string_view path, std::string_view what);
  // Records a problem that has no key (syntax errors).
  void RawError(int line, std::string_view what);
  // Records something worth fixing that does not stop the config from
  // loading (a secret file other users may read), at LineOf(path).
  void WarningAt(std::string_view path, std::string_view what);

  bool has_errors() const { return !errors_.empty(); }
  size_t error_count() const { return errors_.size(); }
  // All problems, ordered by line (stable), one per line; at most kMaxShown
  // followed by a count of the rest.
  base::Error ToError() const;
  // The warnings, ordered by line (stable), one
  // "NAME:LINE: warning: key.path: what" each.
  std::vector<std::string> Warnings() const;

  static constexpr size_t kMaxShown = 20;

 private:
  struct Problem {
    int line;
    std::string text;
  };

  std::string source_name_;
  std::map<std::string, int, std::less<>> lines_;
  std::vector<Problem> errors_;
  std::vector<Problem> warnings_;
};

}  // namespace turnkey::config
