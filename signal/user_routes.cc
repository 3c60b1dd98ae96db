// GET /api/users/me, Bearer
//   200 {user: {id, email, handle, displayName, createdAt, updatedAt}}
// PATCH /api/users/me {displayName?, handle?}, Bearer
//   200 {user}. A handle taken by someone else (ignoring ASCII case) is 409
//   HANDLE_TAKEN; changing the case of one's own handle is fine.
// GET /api/users/search?q=PREFIX[&limit=N], Bearer
//   200 {users: [{id, handle, displayName}]}: handles starting with the
//   prefix (ASCII case-insensitive, a leading '@' ignored), at most 20
//   (limit 1-20), never the caller.
#include <string>
#include <utility>
#include <vector>

#include "signal/account_rules.h"
#include "signal/api_json.h"
#include "signal/api_routes.h"

namespace turnkey::signal {

namespace {

constexpr int kMaxSearchResults = 20;

void GetMe(ApiContext& api, ApiCall call) {
  auto job = [&api, user_id = call.user_id()] {
    return api.Db([&](sql::Store& store) { return store.GetUserById(user_id); });
  };
  api.RunRead(std::move(call), std::move(job), [&api](ApiCall call, base::Result<sql::User> user) {
    if (!user) {
      call.Fail(user.error().code == base::ErrorCode::kNotFound
                    ? ApiError::NotFound("This account no longer exists")
                    : FromStoreError(user.error()));
      return;
    }
    api.ProfileRead(*user);
    call.Ok(nlohmann::json{{"user", UserJson(*user)}});
  });
}

void UpdateMe(ApiContext& api, ApiCall call) {
  auto body = call.JsonBody();
  if (!body) {
    call.Fail(body.error());
    return;
  }
  sql::ProfileUpdate update;
  auto display_name = OptionalChecked(*body, "displayName", &CheckDisplayName);
  if (!display_name) {
    call.Fail(display_name.error());
    return;
  }
  update.display_name = std::move(*display_name);
  auto handle = OptionalChecked(*body, "handle", &CheckHandle);
  if (!handle) {
    call.Fail(handle.error());
    return;
  }
  update.handle = std::move(*handle);
  if (!update.display_name && !update.handle) {
    call.Fail(ApiError::Validation("displayName", "nothing to update: send displayName or handle"));
    return;
  }
  auto job = [&api, user_id = call.user_id(), update = std::move(update)] {
    return api.Db(
        [&](sql::Store& store) { return store.UpdateProfile(user_id, update, api.NowMs()); });
  };
  api.Run(std::move(call), std::move(job), [&api](ApiCall call, base::Result<sql::User> user) {
    if (!user) {
      call.Fail(user.error().code == base::ErrorCode::kNotFound
                    ? ApiError::NotFound("This account no longer exists")
                    : FromStoreError(user.error()));
      return;
    }
    api.ProfileRead(*user, /*changed=*/true);
    call.Ok(nlohmann::json{{"user", UserJson(*user)}}, "Profile updated");
  });
}

void Search(ApiContext& api, ApiCall call) {
  std::string prefix = call.request().QueryParam("q").value_or("");
  if (prefix.starts_with('@')) {
    prefix.erase(0, 1);
  }
  if (auto problem = CheckSearchPrefix(prefix)) {
    call.Fail(ApiError::Validation("q", *problem));
    return;
  }
  auto limit = IntQueryParam(call.request(), "limit", kMaxSearchResults, 1, kMaxSearchResults);
  if (!limit) {
    call.Fail(limit.error());
    return;
  }
  auto job = [&api, user_id = call.user_id(), prefix = std::move(prefix), limit = *limit] {
    return api.Db(
        [&](sql::Store& store) { return store.SearchUsersByHandlePrefix(prefix, user_id, limit); });
  };
  api.RunRead(std::move(call), std::move(job),
              [](ApiCall call, base::Result<std::vector<sql::UserSummary>> users) {
                if (!users) {
                  call.Fail(FromStoreError(users.error()));
                  return;
                }
                nlohmann::json list = nlohmann::json::array();
                for (const sql::UserSummary& user : *users) {
                  list.push_back(UserSummaryJson(user));
                }
                call.Ok(nlohmann::json{{"users", std::move(list)}});
              });
}

}  // namespace

base::Status AddUserRoutes(ApiContext& api) {
  using Access = ApiContext::Access;
  return api.AddAll({{"GET", "/api/users/me", Access::kUser, &GetMe},
                     {"PATCH", "/api/users/me", Access::kUser, &UpdateMe},
                     {"GET", "/api/users/search", Access::kUser, &Search}});
}

}  // namespace turnkey::signal
