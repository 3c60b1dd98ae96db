// GET /api/calls/history?type=audio|video&direction=incoming|outgoing
//     &limit=1-100&skip=N, Bearer
//   200 {calls: [{callId, type, status, direction, isMissed, duration, ...}
//   (api_json.h)], hasMore, limit, skip}, newest first, without the calls
//   the user hid.
// GET /api/calls/missed?type&limit&skip, Bearer
//   The same for incoming missed calls only.
// DELETE /api/calls/history/:callId, Bearer
//   200 {callId, hidden: true}: hides the call from this user's history
//   only; 404 when the user took no part in it.
//
// POST /api/calls/initiate|accept|reject|end need the live call state and
// are added by the call manager's owner, not here.
#include <chrono>
#include <string>
#include <utility>

#include "signal/api_json.h"
#include "signal/api_routes.h"

namespace turnkey::signal {

namespace {

constexpr int kDefaultPage = 20;
constexpr int kMaxPage = 100;
constexpr int kMaxSkip = 1000000;

struct Page {
  int limit = kDefaultPage;
  int skip = 0;
};

std::expected<Page, ApiError> ReadPage(const net::HttpRequest& request) {
  auto limit = IntQueryParam(request, "limit", kDefaultPage, 1, kMaxPage);
  if (!limit) {
    return std::unexpected(limit.error());
  }
  auto skip = IntQueryParam(request, "skip", 0, 0, kMaxSkip);
  if (!skip) {
    return std::unexpected(skip.error());
  }
  return Page{*limit, *skip};
}

void Answer(ApiCall call, const Page& page, base::Result<sql::HistoryPage> history) {
  if (!history) {
    call.Fail(FromStoreError(history.error()));
    return;
  }
  nlohmann::json calls = nlohmann::json::array();
  for (const sql::HistoryEntry& entry : history->entries) {
    calls.push_back(HistoryEntryJson(entry));
  }
  call.Ok(nlohmann::json{{"calls", std::move(calls)},
                         {"hasMore", history->has_more},
                         {"limit", page.limit},
                         {"skip", page.skip}});
}

// The page and `type` of a history request; `direction` too unless
// `missed_only` (missed calls are incoming by definition).
std::expected<sql::HistoryQuery, ApiError> ReadQuery(const ApiCall& call, bool missed_only) {
  auto page = ReadPage(call.request());
  if (!page) {
    return std::unexpected(page.error());
  }
  sql::HistoryQuery query;
  query.user_id = call.user_id();
  query.limit = page->limit;
  query.skip = page->skip;
  query.missed_only = missed_only;
  std::string type = call.request().QueryParam("type").value_or("");
  if (!type.empty() && type != "all") {
    query.type = sql::ParseCallType(type);
    if (!query.type) {
      return std::unexpected(ApiError::Validation("type", "type must be audio, video or all"));
    }
  }
  if (missed_only) {
    return query;
  }
  std::string direction = call.request().QueryParam("direction").value_or("");
  if (direction == "incoming") {
    query.direction = sql::CallDirection::kIncoming;
  } else if (direction == "outgoing") {
    query.direction = sql::CallDirection::kOutgoing;
  } else if (!direction.empty() && direction != "all") {
    return std::unexpected(
        ApiError::Validation("direction", "direction must be incoming, outgoing or all"));
  }
  return query;
}

// How long a history read waits for the records made before it (usually one
// group commit, 20 ms), and a hide, which answers 503 rather than "not found"
// for a call that may still wait to be written.
constexpr std::chrono::milliseconds kReadBarrierWait{1000};
constexpr std::chrono::milliseconds kHideBarrierWait{5000};

void Query(ApiContext& api, ApiCall call, bool missed_only) {
  auto query = ReadQuery(call, missed_only);
  if (!query) {
    call.Fail(query.error());
    return;
  }
  const Page page{query->limit, query->skip};
  // A read (it gets a worker while writes wait for a locked database): the
  // barrier waits for the history writer, not for a lock, and for at most
  // kReadBarrierWait, as the read holds a worker kept for reads meanwhile;
  // past it the read answers with what is written.
  auto job = [&api, query = std::move(*query), barrier = api.HistoryBarrier(kReadBarrierWait)] {
    barrier();
    return api.Db([&](sql::Store& store) { return store.CallHistory(query); });
  };
  api.RunRead(std::move(call), std::move(job),
              [page](ApiCall call, base::Result<sql::HistoryPage> history) {
                Answer(std::move(call), page, std::move(history));
              });
}

void History(ApiContext& api, ApiCall call) { Query(api, std::move(call), false); }

void Missed(ApiContext& api, ApiCall call) { Query(api, std::move(call), true); }

void Hide(ApiContext& api, ApiCall call) {
  std::string call_id(call.request().Param("callId").value_or(""));
  auto job = [&api, user_id = call.user_id(), call_id,
              barrier = api.HistoryBarrier(kHideBarrierWait)]() -> base::Status {
    const bool written = barrier();
    auto hidden = api.Db([&](sql::Store& store) { return store.HideCall(call_id, user_id); });
    if (!hidden && hidden.error().code == base::ErrorCode::kNotFound && !written) {
      // The call may be one whose row still waits in memory for the
      // database: "not found" now would be wrong once it is written.
      return base::Unavailable("the call history waits for the database");
    }
    return hidden;
  };
  api.Run(std::move(call), std::move(job), [call_id](ApiCall call, base::Status hidden) {
    if (!hidden) {
      call.Fail(hidden.error().code == base::ErrorCode::kNotFound
                    ? ApiError::NotFound("Call not found")
                    : FromStoreError(hidden.error()));
      return;
    }
    call.Ok(nlohmann::json{{"callId", call_id}, {"hidden", true}}, "Call removed from history");
  });
}

}  // namespace

base::Status AddCallHistoryRoutes(ApiContext& api) {
  using Access = ApiContext::Access;
  return api.AddAll({{"GET", "/api/calls/history", Access::kUser, &History},
                     {"GET", "/api/calls/missed", Access::kUser, &Missed},
                     {"DELETE", "/api/calls/history/:callId", Access::kUser, &Hide}});
}

}  // namespace turnkey::signal
