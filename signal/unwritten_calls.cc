#include "signal/unwritten_calls.h"

#include <errno.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "base/json_parse.h"
#include "base/log.h"

namespace turnkey::signal {
namespace {

using Json = nlohmann::ordered_json;

void PutOptional(Json& out, const char* key, const std::optional<int64_t>& value) {
  if (value) {
    out[key] = *value;
  }
}

// The member `key` as `T`, or as nullopt when absent or null. Throws
// nlohmann's type_error when it has another type.
template <typename T>
std::optional<T> GetOptional(const Json& in, const char* key) {
  auto found = in.find(key);
  if (found == in.end() || found->is_null()) {
    return std::nullopt;
  }
  return found->get<T>();
}

Json EncodeIce(const sql::IceReport& report) {
  Json out = Json::object();
  out["state"] = report.state;
  out["local"] = report.local_candidate_type;
  out["remote"] = report.remote_candidate_type;
  out["protocol"] = report.relay_protocol;
  PutOptional(out, "rtt_ms", report.rtt_ms);
  out["at_ms"] = report.reported_at_ms;
  if (!report.failure_cause.empty()) {
    out["cause"] = report.failure_cause;
  }
  return out;
}

sql::IceReport DecodeIce(const Json& in) {
  sql::IceReport report;
  report.state = in.at("state").get<std::string>();
  report.local_candidate_type = in.at("local").get<std::string>();
  report.remote_candidate_type = in.at("remote").get<std::string>();
  report.relay_protocol = in.at("protocol").get<std::string>();
  report.rtt_ms = GetOptional<int64_t>(in, "rtt_ms");
  report.reported_at_ms = in.at("at_ms").get<int64_t>();
  report.failure_cause =
      GetOptional<std::string>(in, "cause").value_or("");  // absent in older files
  return report;
}

// The columns an insert and a state update share, written whole.
void PutState(Json& out, const sql::CallStateUpdate& state) {
  out["status"] = sql::CallStatusName(state.status);
  out["reason"] = state.end_reason;
  PutOptional(out, "answered_ms", state.answered_at_ms);
  PutOptional(out, "ended_ms", state.ended_at_ms);
  out["duration_s"] = state.duration_seconds;
}

sql::CallStateUpdate DecodeState(const Json& in) {
  sql::CallStateUpdate state;
  auto status = sql::ParseCallStatus(in.at("status").get<std::string>());
  if (!status) {
    throw std::invalid_argument("status");
  }
  state.status = *status;
  state.end_reason = in.at("reason").get<std::string>();
  state.answered_at_ms = GetOptional<int64_t>(in, "answered_ms");
  state.ended_at_ms = GetOptional<int64_t>(in, "ended_ms");
  state.duration_seconds = in.at("duration_s").get<int64_t>();
  return state;
}

sql::CallWrite DecodeWrite(const Json& in) {
  const std::string kind = in.at("write").get<std::string>();
  if (kind == "insert") {
    sql::Call call;
    call.id = in.at("id").get<std::string>();
    call.caller_id = in.at("caller").get<std::string>();
    call.callee_id = in.at("callee").get<std::string>();
    auto type = sql::ParseCallType(in.at("type").get<std::string>());
    if (!type) {
      throw std::invalid_argument("type");
    }
    call.type = *type;
    call.created_at_ms = in.at("created_ms").get<int64_t>();
    sql::CallStateUpdate state = DecodeState(in);
    call.status = state.status;
    call.end_reason = std::move(state.end_reason);
    call.answered_at_ms = state.answered_at_ms;
    call.ended_at_ms = state.ended_at_ms;
    call.duration_seconds = state.duration_seconds;
    if (auto found = in.find("caller_ice"); found != in.end() && !found->is_null()) {
      call.caller_ice = DecodeIce(*found);
    }
    if (auto found = in.find("callee_ice"); found != in.end() && !found->is_null()) {
      call.callee_ice = DecodeIce(*found);
    }
    return call;
  }
  if (kind == "state") {
    sql::CallStateUpdate update = DecodeState(in);
    update.call_id = in.at("id").get<std::string>();
    return update;
  }
  if (kind == "ice") {
    sql::IceUpdate update;
    update.call_id = in.at("id").get<std::string>();
    const std::string side = in.at("side").get<std::string>();
    if (side == sql::CallSideName(sql::CallSide::kCaller)) {
      update.side = sql::CallSide::kCaller;
    } else if (side == sql::CallSideName(sql::CallSide::kCallee)) {
      update.side = sql::CallSide::kCallee;
    } else {
      throw std::invalid_argument("side");
    }
    update.report = DecodeIce(in.at("report"));
    return update;
  }
  throw std::invalid_argument("write");
}

}  // namespace

std::string EncodeCallWrite(const sql::CallWrite& write) {
  Json out = Json::object();
  out["write"] = sql::CallWriteKind(write);
  out["id"] = sql::CallWriteCallId(write);
  if (const auto* call = std::get_if<sql::Call>(&write)) {
    out["caller"] = call->caller_id;
    out["callee"] = call->callee_id;
    out["type"] = sql::CallTypeName(call->type);
    out["created_ms"] = call->created_at_ms;
    PutState(out, sql::CallStateUpdate{.status = call->status,
                                       .end_reason = call->end_reason,
                                       .answered_at_ms = call->answered_at_ms,
                                       .ended_at_ms = call->ended_at_ms,
                                       .duration_seconds = call->duration_seconds});
    if (call->caller_ice) {
      out["caller_ice"] = EncodeIce(*call->caller_ice);
    }
    if (call->callee_ice) {
      out["callee_ice"] = EncodeIce(*call->callee_ice);
    }
  } else if (const auto* state = std::get_if<sql::CallStateUpdate>(&write)) {
    PutState(out, *state);
  } else {
    const auto& ice = std::get<sql::IceUpdate>(write);
    out["side"] = sql::CallSideName(ice.side);
    out["report"] = EncodeIce(ice.report);
  }
  // The ids and reports came through validated UTF-8; replace rather than
  // throw should one not be.
  return out.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::optional<sql::CallWrite> DecodeCallWrite(std::string_view line) {
  std::optional<Json> in = base::ParseJson<Json>(line);
  if (!in || !in->is_object()) {
    return std::nullopt;
  }
  try {
    return DecodeWrite(*in);
  } catch (const std::exception&) {
    return std::nullopt;  // a member missing or of another type
  }
}

namespace {

// Opens `path` for writing with `flags` (mode 0600 when created), writes all
// of `text`, and with `sync` syncs it to disk. An append that fails takes
// back what it wrote: no part of a write stays behind to be read twice (its
// caller keeps the writes), nor a cut line that the next append would
// continue.
base::Status WriteFile(const std::string& path, int flags, std::string_view text, bool sync) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | flags, 0600);
  if (fd < 0) {
    return base::Unavailable(fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
  }
  struct stat st {};
  const off_t start = (flags & O_APPEND) != 0 && ::fstat(fd, &st) == 0 ? st.st_size : -1;
  auto fail = [&](std::string_view what, int error) {
    if (start >= 0 && ::ftruncate(fd, start) != 0) {
      TK_LOG_ERROR("calls: {}: cannot take back a failed append: {}", path, std::strerror(errno));
    }
    ::close(fd);
    return base::Unavailable(fmt::format("{}: cannot {}: {}", path, what, std::strerror(error)));
  };
  size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return fail("write", n < 0 ? errno : ENOSPC);
    }
    written += static_cast<size_t>(n);
  }
  if (sync && ::fsync(fd) != 0) {
    return fail("sync", errno);
  }
  ::close(fd);
  return {};
}

}  // namespace

base::Status UnwrittenCallsFile::Append(std::span<const sql::CallWrite> writes, bool sync) {
  std::string text;
  for (const sql::CallWrite& write : writes) {
    text += EncodeCallWrite(write);
    text += '\n';
  }
  std::lock_guard lock(mutex_);
  return WriteFile(path_, O_APPEND | O_CREAT, text, sync);
}

base::Status UnwrittenCallsFile::DropBefore(uint64_t offset) {
  if (offset == 0) {
    return {};
  }
  return PutInFront({}, offset, /*sync=*/true);
}

base::Status UnwrittenCallsFile::PutInFront(std::span<const sql::CallWrite> front, uint64_t offset,
                                            bool sync) {
  std::string text;
  for (const sql::CallWrite& write : front) {
    text += EncodeCallWrite(write);
    text += '\n';
  }
  std::lock_guard lock(mutex_);
  {
    std::ifstream in(path_, std::ios::binary);
    if (!in && errno != ENOENT) {
      return base::Unavailable(fmt::format("{}: cannot read: {}", path_, std::strerror(errno)));
    }
    if (in) {
      if (!in.seekg(static_cast<std::streamoff>(offset))) {
        return base::Unavailable(fmt::format("{}: cannot read: {}", path_, std::strerror(errno)));
      }
      text.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
      if (in.bad()) {
        return base::Unavailable(fmt::format("{}: cannot read: {}", path_, std::strerror(errno)));
      }
    }
  }
  if (text.empty()) {
    if (::unlink(path_.c_str()) != 0 && errno != ENOENT) {
      return base::Unavailable(fmt::format("{}: cannot remove: {}", path_, std::strerror(errno)));
    }
    return {};
  }
  // A new file renamed over the old one: a crash leaves one or the other.
  const std::string next = path_ + ".new";
  base::Status written = WriteFile(next, O_CREAT | O_TRUNC, text, sync);
  if (written && ::rename(next.c_str(), path_.c_str()) != 0) {
    written = base::Unavailable(fmt::format("{}: cannot replace: {}", path_, std::strerror(errno)));
  }
  if (!written) {
    ::unlink(next.c_str());
  }
  return written;
}

base::Result<UnwrittenCallsChunk> ReadUnwrittenCalls(const std::string& path, uint64_t offset,
                                                     size_t max_writes) {
  UnwrittenCallsChunk chunk;
  chunk.next_offset = offset;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) {
    chunk.end = true;
    return chunk;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in || !in.seekg(static_cast<std::streamoff>(offset))) {
    return base::Internal(fmt::format("{}: cannot read: {}", path, std::strerror(errno)));
  }
  std::string line;
  while (chunk.writes.size() < max_writes) {
    if (!std::getline(in, line)) {
      break;  // the end
    }
    if (in.eof()) {
      break;  // a line without its newline: not whole (yet)
    }
    const uint64_t at = chunk.next_offset;
    chunk.next_offset += line.size() + 1;
    if (line.empty()) {
      continue;
    }
    std::optional<sql::CallWrite> write = DecodeCallWrite(line);
    if (!write) {
      ++chunk.unreadable;
      TK_LOG_WARN("calls: {} at byte {}: not a call history write; skipped", path, at);
      continue;
    }
    chunk.writes.push_back(std::move(*write));
  }
  if (in.bad()) {
    return base::Internal(fmt::format("{}: cannot read: {}", path, std::strerror(errno)));
  }
  // A full chunk may have ended exactly at the end: the next one is empty.
  chunk.end = chunk.writes.size() < max_writes;
  return chunk;
}

namespace {

// Transactions of the replay at the start, and refusals logged one by one.
constexpr size_t kReplayChunk = 512;
constexpr size_t kRefusalsLogged = 10;

using Progress = std::function<void(const UnwrittenCallsReplay&)>;

// Applies `writes` as one transaction and counts what became of them.
base::Status ApplyChunk(sql::Store& store, const std::vector<sql::CallWrite>& writes,
                        UnwrittenCallsReplay& replay, const Progress& progress) {
  if (writes.empty()) {
    return {};
  }
  base::Result<std::vector<base::Status>> results = store.ApplyCallWrites(writes);
  if (!results) {
    return std::unexpected(results.error());
  }
  for (size_t i = 0; i < writes.size() && i < results->size(); ++i) {
    if ((*results)[i]) {
      ++replay.applied;
      continue;
    }
    if (++replay.refused <= kRefusalsLogged) {
      TK_LOG_WARN("calls: a saved call history write of call {} refused by the store: {}",
                  sql::CallWriteCallId(writes[i]), (*results)[i].error().message);
    }
  }
  if (progress) {
    progress(replay);
  }
  return {};
}

// The newest ICE report of each call's side, by call id and side.
using NewestIce = std::unordered_map<std::string, sql::IceUpdate>;

// Whether the file ends each call it names (any of its lines with a final
// status, whatever their order), by call id.
using FileCalls = std::unordered_map<std::string, bool>;

void NoteState(FileCalls& calls, const sql::CallWrite& write) {
  if (const auto* call = std::get_if<sql::Call>(&write)) {
    calls[call->id] |= sql::IsEndStatus(call->status);
  } else if (const auto* update = std::get_if<sql::CallStateUpdate>(&write)) {
    calls[update->call_id] |= sql::IsEndStatus(update->status);
  }
}

// Ends the calls the file leaves ringing or active (Store::EndUnfinishedCallsById),
// a transaction per kReplayChunk of them: the process that saved it ran them
// and is gone (a stop writes every call's end; a crash does not), so they
// are over. In a cluster nobody else ends them: the coordinator that took
// over swept the database before these rows were in it. A call the database
// already holds ended keeps that end.
base::Status EndWhatTheFileLeftGoing(sql::Store& store, const FileCalls& calls,
                                     UnwrittenCallsReplay& replay, const Progress& progress) {
  std::vector<std::string> going;
  for (const auto& [id, ended] : calls) {
    if (!ended) {
      going.push_back(id);
    }
  }
  for (size_t first = 0; first < going.size(); first += kReplayChunk) {
    const std::span<const std::string> chunk =
        std::span(going).subspan(first, std::min(kReplayChunk, going.size() - first));
    base::Result<int> ended = store.EndUnfinishedCallsById(chunk);
    if (!ended) {
      return std::unexpected(ended.error());
    }
    replay.ended += static_cast<size_t>(*ended);
    if (progress) {
      progress(replay);
    }
  }
  return {};
}

// One pass over the file, a chunk at a time: applies its inserts
// (`inserts`), or its state updates while keeping the newest ICE report of
// each side in `ice`; notes in `calls` which calls it ends. Returns where
// the whole lines end.
base::Result<uint64_t> ReplayPass(sql::Store& store, const std::string& path, bool inserts,
                                  NewestIce& ice, FileCalls& calls, UnwrittenCallsReplay& replay,
                                  const Progress& progress) {
  uint64_t offset = 0;
  for (;;) {
    auto chunk = ReadUnwrittenCalls(path, offset, kReplayChunk);
    if (!chunk) {
      return std::unexpected(chunk.error());
    }
    if (inserts) {
      replay.unreadable += chunk->unreadable;
    }
    std::vector<sql::CallWrite> writes;
    for (sql::CallWrite& write : chunk->writes) {
      if (std::holds_alternative<sql::Call>(write) != inserts) {
        continue;
      }
      NoteState(calls, write);
      if (auto* report = std::get_if<sql::IceUpdate>(&write)) {
        std::string key = report->call_id;
        key += '\n';  // never in an id
        key += sql::CallSideName(report->side);
        auto [kept, added] = ice.try_emplace(std::move(key), *report);
        if (!added) {
          ++replay.superseded;
          if (kept->second.report.reported_at_ms <= report->report.reported_at_ms) {
            kept->second = std::move(*report);
          }
        }
        continue;
      }
      writes.push_back(std::move(write));
    }
    if (auto applied = ApplyChunk(store, writes, replay, progress); !applied) {
      return std::unexpected(applied.error());
    }
    offset = chunk->next_offset;
    if (chunk->end) {
      return offset;
    }
  }
}

}  // namespace

base::Result<UnwrittenCallsReplay> ReplayUnwrittenCalls(
    sql::Store& store, const std::string& path,
    const std::function<void(const UnwrittenCallsReplay&)>& progress) {
  UnwrittenCallsReplay replay;
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) {
    return replay;
  }
  // Every row first, so that no update is refused for want of its row. The
  // file's order is not the order the records were made in (at a stop,
  // batches that failed on the workers are saved as they come back, after
  // newer records already in the file), so nothing after that depends on
  // it: a state update of a call already ended is refused (a row once ended
  // is never rewritten; an update written after it is older), and of each
  // side's ICE reports the newest is written.
  NewestIce ice;
  FileCalls calls;
  auto whole = ReplayPass(store, path, true, ice, calls, replay, progress);
  if (!whole) {
    return std::unexpected(whole.error());
  }
  if (auto rest = ReplayPass(store, path, false, ice, calls, replay, progress); !rest) {
    return std::unexpected(rest.error());
  }
  // Before the ICE reports, so that a failed batch of them cannot keep
  // these out (each chunk is one transaction).
  if (auto ended = EndWhatTheFileLeftGoing(store, calls, replay, progress); !ended) {
    return std::unexpected(ended.error());
  }
  std::vector<sql::CallWrite> reports;
  for (auto& [key, report] : ice) {
    reports.push_back(std::move(report));
    if (reports.size() == kReplayChunk) {
      if (auto applied = ApplyChunk(store, reports, replay, progress); !applied) {
        return std::unexpected(applied.error());
      }
      reports.clear();
    }
  }
  if (auto applied = ApplyChunk(store, reports, replay, progress); !applied) {
    return std::unexpected(applied.error());
  }
  if (::stat(path.c_str(), &st) == 0 && static_cast<uint64_t>(st.st_size) > *whole) {
    ++replay.unreadable;  // a last line cut short by a crash
    TK_LOG_WARN("calls: {} at byte {}: a line cut short; skipped", path, *whole);
  }
  if (replay.refused > kRefusalsLogged) {
    TK_LOG_WARN("calls: {} saved call history writes refused by the store in all", replay.refused);
  }
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    // Written, but it would be written again at the next start (and then
    // refused as already there): say so.
    TK_LOG_ERROR("calls: {}: cannot remove after writing it: {}", path, std::strerror(errno));
  }
  return replay;
}

}  // namespace turnkey::signal
