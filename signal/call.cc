#include "signal/call.h"

namespace turnkey::signal {

std::string_view CallStateName(CallState state) {
  switch (state) {
    case CallState::kRinging:
      return "ringing";
    case CallState::kActive:
      return "active";
    case CallState::kEnded:
      return "ended";
  }
  return "unknown";
}

std::string_view CallSideName(CallSide side) {
  return side == CallSide::kCaller ? "caller" : "callee";
}

Json JsonObject(size_t members) {
  Json json = Json::object();
  json.get_ref<Json::object_t&>().reserve(members);
  return json;
}

Json UserInfoJson(const UserInfo& user) {
  Json json = JsonObject(3);
  json["id"] = user.id;
  json["handle"] = user.handle;
  json["displayName"] = user.display_name;
  return json;
}

}  // namespace turnkey::signal
