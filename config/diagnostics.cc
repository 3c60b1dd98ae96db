#include "config/diagnostics.h"

#include <algorithm>

#include "config/field_checks.h"

namespace turnkey::config {

void Diagnostics::NoteLine(const std::string& path, int line) { lines_.emplace(path, line); }

int Diagnostics::LineOf(std::string_view path) const {
  while (!path.empty()) {
    auto it = lines_.find(path);
    if (it != lines_.end()) {
      return it->second;
    }
    const size_t cut = path.find_last_of(".[");
    if (cut == std::string_view::npos) {
      break;
    }
    path = path.substr(0, cut);
  }
  return 0;
}

namespace {

std::string Located(const std::string& source_name, int line, std::string_view kind,
                    std::string_view path, std::string_view what) {
  std::string text = source_name;
  text += ":" + std::to_string(std::max(line, 1)) + ": ";
  text.append(kind);
  text.append(path.empty() ? std::string_view("(top level)") : path);
  text += ": ";
  text.append(what);
  // Keys and values come from the file: an escape sequence or a carriage
  // return in one must not reach the terminal as such.
  return Escaped(text);
}

}  // namespace

void Diagnostics::Error(int line, std::string_view path, std::string_view what) {
  errors_.push_back({line, Located(source_name_, line, "", path, what)});
}

void Diagnostics::WarningAt(std::string_view path, std::string_view what) {
  const int line = LineOf(path);
  warnings_.push_back({line, Located(source_name_, line, "warning: ", path, what)});
}

std::vector<std::string> Diagnostics::Warnings() const {
  std::vector<Problem> sorted = warnings_;
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Problem& a, const Problem& b) { return a.line < b.line; });
  std::vector<std::string> out;
  out.reserve(sorted.size());
  for (Problem& p : sorted) {
    out.push_back(std::move(p.text));
  }
  return out;
}

void Diagnostics::ErrorAt(std::string_view path, std::string_view what) {
  Error(LineOf(path), path, what);
}

void Diagnostics::RawError(int line, std::string_view what) {
  std::string text = source_name_;
  if (line > 0) {
    text += ":" + std::to_string(line);
  }
  text += ": ";
  text.append(what);
  errors_.push_back({line, Escaped(text)});
}

base::Error Diagnostics::ToError() const {
  std::vector<const Problem*> sorted;
  sorted.reserve(errors_.size());
  for (const Problem& p : errors_) {
    sorted.push_back(&p);
  }
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const Problem* a, const Problem* b) { return a->line < b->line; });
  std::string message;
  for (size_t i = 0; i < sorted.size() && i < kMaxShown; ++i) {
    if (i > 0) {
      message += "\n";
    }
    message += sorted[i]->text;
  }
  if (sorted.size() > kMaxShown) {
    message += "\n(" + std::to_string(sorted.size() - kMaxShown) + " more errors)";
  }
  return base::Error{base::ErrorCode::kInvalidArgument, std::move(message)};
}

}  // namespace turnkey::config
