// `turnkey call show CALL_ID`: one call as the database has it, for the
// operator following a call id from the log (DESIGN.md section 3): status,
// reason, times, both participants and each side's ICE report.
// `turnkey call list USER`: that user's newest calls, for the operator who
// has only a complaining user's handle. Read-only.
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "app/commands.h"
#include "signal/api_json.h"

namespace turnkey::app {
namespace {

constexpr const char* kCommand = "turnkey call";

int Fail(const base::Error& error, const std::string& what) {
  std::fprintf(stderr, "%s: %s: %s\n", kCommand, what.c_str(), error.message.c_str());
  return 1;
}

// {id, handle, displayName} of a participant, or null for an account that
// no longer exists.
nlohmann::json Participant(sql::Store& store, const std::string& id) {
  auto user = store.GetUserById(id);
  if (!user) {
    return nullptr;
  }
  return signal::UserSummaryJson(sql::UserSummary{user->id, user->handle, user->display_name});
}

}  // namespace

int RunCallShow(const std::string& config_path, const std::string& call_id) {
  std::unique_ptr<sql::Store> store = OpenCommandDatabase(config_path, kCommand);
  if (store == nullptr) {
    return 1;
  }
  auto call = store->GetCall(call_id);
  if (!call) {
    if (call.error().code == base::ErrorCode::kNotFound) {
      std::fprintf(stderr, "%s: no call with id \"%s\"\n", kCommand, call_id.c_str());
      return 1;
    }
    return Fail(call.error(), call_id);
  }
  nlohmann::json out = signal::CallJson(*call);
  out["caller"] = Participant(*store, call->caller_id);
  out["receiver"] = Participant(*store, call->callee_id);
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

int RunCallList(const std::string& config_path, const std::string& who, int limit) {
  std::unique_ptr<sql::Store> store = OpenCommandDatabase(config_path, kCommand);
  if (store == nullptr) {
    return 1;
  }
  auto user = FindCommandUser(*store, who);
  if (!user) {
    if (user.error().code == base::ErrorCode::kNotFound) {
      std::fprintf(stderr, "%s: no user \"%s\" (give an id, an email or a handle)\n", kCommand,
                   who.c_str());
      return 1;
    }
    return Fail(user.error(), who);
  }
  sql::HistoryQuery query;
  query.user_id = user->id;
  query.limit = limit;
  auto page = store->CallHistory(query);
  if (!page) {
    return Fail(page.error(), who);
  }
  nlohmann::json calls = nlohmann::json::array();
  for (const sql::HistoryEntry& entry : page->entries) {
    calls.push_back(signal::HistoryEntryJson(entry));
  }
  nlohmann::json out = nlohmann::json::object();
  out["user"] =
      signal::UserSummaryJson(sql::UserSummary{user->id, user->handle, user->display_name});
  out["calls"] = std::move(calls);
  out["hasMore"] = page->has_more;
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}

}  // namespace turnkey::app
