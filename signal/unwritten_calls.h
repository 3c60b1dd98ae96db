// The call history writes a stop could not make (the database was away, or
// still had not taken them when the shutdown budget ran out), kept in a file
// in state_dir and written at the next start, before anything else touches
// the history (DESIGN.md section 6: nothing lost).
//
// The file holds one JSON object per line, one write each, appended and
// synced by whoever gives writes up at the stop (any thread). A line that
// does not read as a write (cut short by a crash during the append) is
// skipped at the replay, logged. The replay writes the inserts first, then
// the state updates and ICE reports in the order they were saved, so a
// call's update never reaches the store before its row; a write the store
// refuses (the row was meanwhile ended as server_restart by another node, or
// the insert had in fact committed) is logged and left, as the recorder
// does.
#pragma once

#include <cstddef>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "base/status.h"
#include "sql/store.h"

namespace turnkey::signal {

// The file's name in state_dir.
inline constexpr std::string_view kUnwrittenCallsFileName = "unwritten-calls.jsonl";

// One write as one line of JSON (no newline), and back: nullopt for a line
// that is not one.
std::string EncodeCallWrite(const sql::CallWrite& write);
std::optional<sql::CallWrite> DecodeCallWrite(std::string_view line);

// Appends writes to the file (created with mode 0600). Any thread.
class UnwrittenCallsFile {
 public:
  explicit UnwrittenCallsFile(std::string path) : path_(std::move(path)) {}

  const std::string& path() const { return path_; }
  // Appends `writes` and syncs them to disk; an error says why not (then
  // none or only some reached the file).
  base::Status Append(std::span<const sql::CallWrite> writes);

 private:
  const std::string path_;
  std::mutex mutex_;  // one append at a time, whole lines
};

struct UnwrittenCallsReplay {
  size_t applied = 0;     // written
  size_t refused = 0;     // refused by the store (logged)
  size_t unreadable = 0;  // lines that were not a write (logged)
};

// Writes what the file at `path` holds into `store` in one transaction and
// removes the file. No file: nothing to do. The store's error when it could
// not take them as a whole (kUnavailable when the database is away), or
// kInternal when the file cannot be read: the file is kept for the next try.
base::Result<UnwrittenCallsReplay> ReplayUnwrittenCalls(sql::Store& store, const std::string& path);

}  // namespace turnkey::signal
