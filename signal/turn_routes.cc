// GET /api/turn/credentials, Bearer
//   200 {username, password, ttl, uris, iceServers}: the TURN REST API
//   response (username "<expiry>:<user id>", password
//   base64(HMAC-SHA1(secret, username))) and the same as an iceServers
//   list. 503 TURN_NOT_CONFIGURED when no TURN secret or TURN URI is set.
// GET /healthz
//   200 while the process serves.
// GET /readyz
//   200 when the database answers and no drain has begun, else 503
//   SERVICE_UNAVAILABLE.
#include <utility>

#include "base/log.h"
#include "signal/api_routes.h"

namespace turnkey::signal {

namespace {

void TurnCredentials(ApiContext& api, ApiCall call) {
  auto ice = api.IceServers(call.user_id());
  if (!ice) {
    TK_LOG_ERROR("signal: ice servers: {}", ice.error().message);
    call.Fail(ApiError::Internal());
    return;
  }
  nlohmann::json data = auth::TurnCredentialsJson(*ice);
  if (data.empty()) {
    ApiError error;
    error.status = 503;
    error.code = std::string(api_code::kTurnNotConfigured);
    error.message = "No TURN server is configured";
    call.Fail(error);
    return;
  }
  data["iceServers"] = auth::IceServersJson(*ice);
  call.Ok(std::move(data));
}

void Health(ApiContext&, ApiCall call) { call.Ok(nlohmann::json{{"status", "ok"}}); }

void Ready(ApiContext& api, ApiCall call) {
  if (api.draining()) {
    call.Fail(ApiError::Unavailable("Draining: new calls are refused"));
    return;
  }
  if (std::string reason = api.NotReadyReason(); !reason.empty()) {
    TK_LOG_WARN_EVERY(std::chrono::seconds(10), "signal: readyz: {}", reason);
    call.Fail(ApiError::Unavailable("Not ready: " + reason));
    return;
  }
  auto job = [&api] { return api.Db([](sql::Store& store) { return store.Ping(); }); };
  api.RunRead(std::move(call), std::move(job), [](ApiCall call, base::Status ping) {
    if (!ping) {
      TK_LOG_WARN_EVERY(std::chrono::seconds(10), "signal: readyz: database: {}",
                        ping.error().message);
      call.Fail(ApiError::Unavailable("The database is unavailable"));
      return;
    }
    call.Ok(nlohmann::json{{"status", "ready"}});
  });
}

}  // namespace

base::Status AddTurnAndHealthRoutes(ApiContext& api) {
  using Access = ApiContext::Access;
  return api.AddAll({{"GET", "/api/turn/credentials", Access::kUser, &TurnCredentials},
                     {"GET", "/healthz", Access::kPublic, &Health},
                     {"GET", "/readyz", Access::kPublic, &Ready}});
}

}  // namespace turnkey::signal
