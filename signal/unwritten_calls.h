// Call history writes kept in a file in state_dir rather than lost
// (DESIGN.md section 6: nothing lost): those a stop could not make (the
// database was away, or still had not taken them when the shutdown budget
// ran out), written at the next start before anything else touches the
// history; and, while the database is away for long, those beyond what the
// recorder keeps in memory, read back in order once it is back
// (CallStoreRecorder).
//
// The file holds one JSON object per line, one write each, appended by
// whoever saves writes (any thread; synced at the stop). A line that does
// not read as a write (cut short by a crash during the append) is skipped,
// logged. The replay at the start does not depend on the file's order: it
// writes the inserts first, so a call's update never reaches the store
// before its row, then the state updates (a row once ended is never
// rewritten, so an older update after the end is refused), then the newest
// ICE report of each side. A write the store refuses (a state update older
// than the end already written, or a write that had in fact been made: a
// crash after part of the file was read back) is counted and left, as the
// recorder does; an end replaces one another node made up (server_restart)
// meanwhile.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

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
  // Appends `writes` in one write (and with `sync`, syncs the file to disk:
  // what survives a power loss, not only a crash of the process); an error
  // says why not (then none or only some reached the file).
  base::Status Append(std::span<const sql::CallWrite> writes, bool sync = true);
  // Removes the file's first `offset` bytes (whole lines already read back),
  // keeping the rest (synced); the file goes when nothing is left.
  base::Status DropBefore(uint64_t offset);
  // Puts `writes` in front of the file's lines from byte `offset` on (those
  // before it, already read back, go), as one new file renamed over the
  // old one (synced with `sync`), so a crash leaves one or the other; the
  // file goes when nothing is left.
  base::Status PutInFront(std::span<const sql::CallWrite> front, uint64_t offset, bool sync);

 private:
  const std::string path_;
  std::mutex mutex_;  // one append at a time, whole lines
};

// Up to `max_writes` whole lines of the file from byte `offset` on.
struct UnwrittenCallsChunk {
  std::vector<sql::CallWrite> writes;
  uint64_t next_offset = 0;  // where the next chunk starts
  size_t unreadable = 0;     // lines that were not a write (logged)
  bool end = false;          // fewer than max_writes: no whole line is left after it
};
// No file reads as an empty chunk at its end; kInternal when it cannot be
// read.
base::Result<UnwrittenCallsChunk> ReadUnwrittenCalls(const std::string& path, uint64_t offset,
                                                     size_t max_writes);

struct UnwrittenCallsReplay {
  size_t applied = 0;     // written
  size_t refused = 0;     // refused by the store (logged)
  size_t unreadable = 0;  // lines that were not a write (logged)
  size_t superseded = 0;  // ICE reports of a side another one of it replaced
  // Calls the file left ringing or active (the process that saved it
  // crashed while they went on), ended as server_restart (not in applied).
  size_t ended = 0;
};

// Writes what the file at `path` holds into `store` (transactions of at
// most 512 writes: the inserts, then the rest), ends the calls it leaves
// ringing or active as Store::EndUnfinishedCalls would (only at a start: the
// process that ran them is gone), and removes the file. No
// file: nothing to do. The store's error when it could not take a
// transaction as a whole (kUnavailable when the database is away), or
// kInternal when the file cannot be read: the file is kept for the next try
// (whose writes already made are then refused).
// `progress`, if set, runs after each transaction with the counts so far.
base::Result<UnwrittenCallsReplay> ReplayUnwrittenCalls(
    sql::Store& store, const std::string& path,
    const std::function<void(const UnwrittenCallsReplay&)>& progress = {});

}  // namespace turnkey::signal
