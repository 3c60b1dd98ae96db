// CallService: POST /api/calls/initiate|accept|reject|end (the contract is
// in call_service.h and docs/api.md).
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "signal/call_service.h"

namespace turnkey::signal {
namespace {

constexpr std::string_view kNotConnected = "NOT_CONNECTED";
constexpr std::string_view kNotAuthorizedCode = "NOT_AUTHORIZED";
constexpr std::string_view kCallConflict = "CALL_CONFLICT";
constexpr std::string_view kUserBusy = "USER_BUSY";
constexpr std::string_view kUserNotAvailable = "USER_NOT_AVAILABLE";

// The REST answer for a failed ack's error string.
ApiError ErrorForAck(const std::string& error) {
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
    return ApiError::RateLimited(1);
  }
  if (error == kErrShuttingDown || error == kErrServerBusy) {
    ApiError unavailable = ApiError::Unavailable(error);
    return unavailable;
  }
  return ApiError::Of(400, api_code::kValidation, error);
}

// {success, message, data: <ack>} for {ok:true}; the mapped error with the
// ack as data otherwise.
void RespondAck(ApiCall call, const Json& ack, std::string_view message) {
  nlohmann::json data = nlohmann::json::parse(ack.dump());
  if (ack.value("ok", false)) {
    call.Ok(std::move(data), message);
    return;
  }
  ApiError error = ErrorForAck(ack.value("error", std::string("Call failed")));
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
  if (auto added = api.Add("POST", "/api/calls/initiate", Access::kUser,
                           [self](ApiCall call) { self->RestInitiate(std::move(call)); });
      !added) {
    return added;
  }
  if (auto added = api.Add("POST", "/api/calls/accept", Access::kUser,
                           [self](ApiCall call) { self->RestAccept(std::move(call)); });
      !added) {
    return added;
  }
  if (auto added = api.Add("POST", "/api/calls/reject", Access::kUser,
                           [self](ApiCall call) { self->RestRejectOrEnd(std::move(call), false); });
      !added) {
    return added;
  }
  return api.Add("POST", "/api/calls/end", Access::kUser,
                 [self](ApiCall call) { self->RestRejectOrEnd(std::move(call), true); });
}

std::optional<uint64_t> CallService::NewestSocketOf(std::string_view user_id,
                                                    std::string_view session) const {
  const uint64_t digest = SessionDigest(session);
  std::span<const uint64_t> sockets = manager_->presence().SocketsOf(user_id);
  std::optional<uint64_t> newest;
  for (auto it = sockets.rbegin(); it != sockets.rend(); ++it) {
    auto entry = sockets_.find(*it);
    if (entry == sockets_.end()) {
      continue;
    }
    if (digest == 0) {
      return *it;
    }
    std::shared_ptr<SocketIoSocket> socket = entry->second.socket.lock();
    if (socket != nullptr && socket->data().session == digest) {
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

void CallService::RestInitiate(ApiCall call) {
  std::optional<Json> payload = RestPayload(call);
  if (!payload) {
    return;
  }
  std::optional<uint64_t> number = NewestSocketOf(call.user_id(), call.token().session);
  if (!number) {
    call.Fail(ApiError::Of(409, kNotConnected,
                           "Connect the Socket.IO client first: a call needs a connected socket"));
    return;
  }
  StartInitiate(*number, *payload, [call = std::move(call)](Json ack) mutable {
    RespondAck(std::move(call), ack, "Call initiated");
  });
}

void CallService::RestAccept(ApiCall call) {
  std::optional<Json> payload = RestPayload(call);
  if (!payload) {
    return;
  }
  std::optional<uint64_t> number = NewestSocketOf(call.user_id(), call.token().session);
  if (!number) {
    call.Fail(
        ApiError::Of(409, kNotConnected,
                     "Connect the Socket.IO client first: the accepting device needs a socket"));
    return;
  }
  Json ack;
  {
    ManagerScope scope(*this);
    ack = manager_->OnAcceptCall(Now(), *number, *payload);
  }
  RespondAck(std::move(call), ack, "Call accepted");
}

void CallService::RestRejectOrEnd(ApiCall call, bool end) {
  std::optional<Json> payload = RestPayload(call);
  if (!payload) {
    return;
  }
  // A stand-in device that exists for this request only: it has no socket,
  // so every real device of the user is told like the other party.
  const uint64_t stand_in = next_number_++;
  Json ack;
  {
    ManagerScope scope(*this);
    const base::MonoTime now = Now();
    manager_->OnSocketConnected(now, stand_in, call.user_id());
    ack = end ? manager_->OnEndCall(now, stand_in, *payload)
              : manager_->OnRejectCall(now, stand_in, *payload);
    manager_->OnSocketDisconnected(now, stand_in);
  }
  RespondAck(std::move(call), ack, end ? "Call ended" : "Call rejected");
}

}  // namespace turnkey::signal
