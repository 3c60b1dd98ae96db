// CallService: POST /api/calls/initiate|accept|reject|end (the contract is
// in call_service.h and docs/api.md).
#include <cmath>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <tuple>
#include <utility>

#include "signal/call_service.h"

namespace turnkey::signal {
namespace {

constexpr std::string_view kNotConnected = "NOT_CONNECTED";
constexpr std::string_view kNotAuthorizedCode = "NOT_AUTHORIZED";
constexpr std::string_view kCallConflict = "CALL_CONFLICT";
constexpr std::string_view kUserBusy = "USER_BUSY";
constexpr std::string_view kUserNotAvailable = "USER_NOT_AVAILABLE";
constexpr std::string_view kNoSocketToCall =
    "Connect the Socket.IO client first: a call needs a connected socket";
constexpr std::string_view kNoSocketToAccept =
    "Connect the Socket.IO client first: the accepting device needs a socket";

// The REST answer for a failed ack's error string.
// `retry_after`: seconds until a refused initiateCall may pass.
ApiError ErrorForAck(const std::string& error, int retry_after) {
  if (error == kErrReceiverIdRequired || error == kErrCannotCallYourself) {
    return ApiError::Validation("receiverId", error);
  }
  if (error == kErrInvalidCallType) {
    return ApiError::Validation("callType", error);
  }
  if (error == kErrCallIdRequired) {
    return ApiError::Validation("callId", error);
  }
  if (error == kErrReceiverNotFound || error == kErrCallNotFound) {
    return ApiError::NotFound(error);
  }
  if (error == kErrNotAuthorized) {
    return ApiError::Of(403, kNotAuthorizedCode, error);
  }
  if (error == kErrCallAlreadyProcessed || error == kErrAlreadyInCall ||
      error == kErrCallNotActive) {
    return ApiError::Of(409, kCallConflict, error);
  }
  if (error == kErrUserBusy) {
    return ApiError::Of(409, kUserBusy, error);
  }
  if (error == kErrUserNotAvailable) {
    return ApiError::Of(409, kUserNotAvailable, error);
  }
  if (error == kErrRateLimited) {
    return ApiError::RateLimited(retry_after);
  }
  if (error == kErrShuttingDown || error == kErrServerBusy) {
    ApiError unavailable = ApiError::Unavailable(error);
    return unavailable;
  }
  return ApiError::Of(400, api_code::kValidation, error);
}

// {success, message, data: <ack>} for {ok:true}; the mapped error with the
// ack as data otherwise.
void RespondAck(ApiCall call, const Json& ack, std::string_view message, int retry_after) {
  nlohmann::json data = nlohmann::json::parse(ack.dump());
  if (ack.value("ok", false)) {
    call.Ok(std::move(data), message);
    return;
  }
  ApiError error = ErrorForAck(ack.value("error", std::string("Call failed")), retry_after);
  if (error.code == api_code::kRateLimited) {
    error.message = std::string(kErrRateLimited);
  }
  net::HttpResponse response = ErrorResponse(error);
  nlohmann::json body = nlohmann::json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_object()) {
    body["data"] = std::move(data);
    response.body = body.dump();
  }
  call.Respond(std::move(response));
}

}  // namespace

base::Status CallService::AddRoutes() {
  using Access = ApiContext::Access;
  std::shared_ptr<CallService> self = shared_from_this();
  ApiContext& api = service_.api();
  for (const auto& [path, event, message] :
       {std::tuple{"/api/calls/initiate", "initiateCall", "Call initiated"},
        std::tuple{"/api/calls/accept", "acceptCall", "Call accepted"},
        std::tuple{"/api/calls/reject", "rejectCall", "Call rejected"},
        std::tuple{"/api/calls/end", "endCall", "Call ended"}}) {
    std::string_view name = event;
    std::string_view said = message;
    if (auto added =
            api.Add("POST", path, Access::kUser,
                    [self, name, said](ApiCall call) { self->Rest(std::move(call), name, said); });
        !added) {
      return added;
    }
  }
  return base::Ok();
}

std::optional<uint64_t> CallService::NewestSocketOf(std::string_view user_id,
                                                    uint64_t session) const {
  std::span<const uint64_t> sockets = manager_->presence().SocketsOf(user_id);
  std::optional<uint64_t> newest;
  for (auto it = sockets.rbegin(); it != sockets.rend(); ++it) {
    uint64_t its_session = 0;
    if (auto entry = sockets_.find(*it); entry != sockets_.end()) {
      std::shared_ptr<SocketIoSocket> socket = entry->second.socket.lock();
      its_session = socket != nullptr ? socket->data().session : 0;
    } else if (auto remote = remote_.find(*it); remote != remote_.end()) {
      its_session = remote->second.session;
    } else {
      continue;  // a stand-in
    }
    if (session == 0 || its_session == session) {
      return *it;
    }
    if (!newest) {
      newest = *it;
    }
  }
  return newest;
}

std::optional<Json> CallService::RestPayload(ApiCall& call) {
  auto body = call.JsonBody();
  if (!body) {
    call.Fail(body.error());
    return std::nullopt;
  }
  if (manager_ == nullptr) {
    call.Fail(ApiError::Unavailable(std::string(kErrShuttingDown)));
    return std::nullopt;
  }
  // The REST body (nlohmann::json) as the manager's event payload type.
  return Json::parse(body->dump());
}

void CallService::RunRestAction(std::string_view event, const std::string& user_id,
                                uint64_t session, Json payload, Answer answer) {
  if (manager_ == nullptr) {
    answer(CallErrorAck(kErrShuttingDown));
    return;
  }
  if (CoordinatorCutOff()) {
    answer(CallErrorAck(kErrServerBusy));
    return;
  }
  if (event == "initiateCall" || event == "acceptCall") {
    std::optional<uint64_t> number = NewestSocketOf(user_id, session);
    if (!number) {
      Json ack = CallErrorAck(event == "initiateCall" ? kNoSocketToCall : kNoSocketToAccept);
      ack["code"] = kNotConnected;
      answer(std::move(ack));
      return;
    }
    if (event == "initiateCall") {
      StartInitiate(*number, payload, std::move(answer));
      return;
    }
    Json ack;
    {
      ManagerScope scope(*this);
      ack = manager_->OnAcceptCall(Now(), *number, payload);
    }
    answer(std::move(ack));
    return;
  }
  // rejectCall, endCall: a stand-in device that exists for this request
  // only: it has no socket, so every real device of the user is told like
  // the other party.
  const uint64_t stand_in = next_number_++;
  Json ack;
  {
    ManagerScope scope(*this);
    const base::MonoTime now = Now();
    manager_->OnSocketConnected(now, stand_in, user_id);
    ack = event == "endCall" ? manager_->OnEndCall(now, stand_in, payload)
                             : manager_->OnRejectCall(now, stand_in, payload);
    manager_->OnSocketDisconnected(now, stand_in);
  }
  answer(std::move(ack));
}

void CallService::Rest(ApiCall call, std::string_view event, std::string_view message) {
  std::optional<Json> payload = RestPayload(call);
  if (!payload) {
    return;
  }
  const std::string user = call.user_id();
  const uint64_t session = SessionDigest(call.token().session);
  // A refused initiateCall passes again once both its buckets have a token:
  // at the slower one's rate at most (per socket, 0.5/s by default).
  double rate = 0;
  for (double r : {options_.calls.initiate_socket_rate, options_.calls.initiate_user_rate}) {
    if (r > 0 && (rate == 0 || r < rate)) {
      rate = r;
    }
  }
  const int retry_after = rate > 0 ? static_cast<int>(std::ceil(1.0 / rate)) : 1;
  Answer answer = [call = std::move(call), message, retry_after](Json ack) mutable {
    if (auto code = ack.find("code"); code != ack.end() && *code == kNotConnected) {
      call.Fail(ApiError::Of(409, kNotConnected, ack.value("error", std::string())));
      return;
    }
    RespondAck(std::move(call), ack, message, retry_after);
  };
  // A cluster node that drains refuses new calls of its own clients only
  // (alone, the manager refuses every one).
  if (event == "initiateCall" && cluster_ != nullptr && draining_) {
    answer(CallErrorAck(kErrShuttingDown));
    return;
  }
  CheckLease();
  if (Forwarding()) {
    Json request = Json::object();
    request["t"] = "rest";
    request["u"] = user;
    request["d"] = session;
    request["e"] = event;
    request["p"] = std::move(*payload);
    Forward(std::move(request), std::move(answer));
    return;
  }
  RunRestAction(event, user, session, std::move(*payload), std::move(answer));
}

}  // namespace turnkey::signal
