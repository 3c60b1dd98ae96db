// POST /api/auth/register {email, password, handle?, displayName?}
//   201 {token, refreshToken, expiresIn, user, iceServers, iceServersTtl}
//   Limited per client address (signal.rate_limits.register_per_address;
//   429 RATE_LIMITED with Retry-After), but for clients on this host.
//   A missing handle is made from the email's local part plus digits; a
//   missing displayName becomes the handle.
// POST /api/auth/login {email, password}
//   200, same data as register. An unknown email and a wrong password get
//   the same 401 INVALID_CREDENTIALS bytes after the same work (a dummy
//   argon2id verification); failures are throttled per account and address
//   (429 RATE_LIMITED with Retry-After).
// POST /api/auth/refresh {refreshToken}
//   200 {token, refreshToken, expiresIn}. The presented token is rotated:
//   presenting it again revokes every token of that login
//   (REFRESH_TOKEN_REUSED), the access tokens it bought included.
// POST /api/auth/logout {refreshToken?}, Bearer
//   200 {revokedTokens}. Signs the user out everywhere: every refresh token
//   of the user is revoked, access tokens issued before now (and the one
//   used) are refused from now on, as are all of each login the revocation
//   ended (a refresh racing with the logout signs after now), and the
//   signed-out hook closes the user's sockets.
// POST /api/auth/password {currentPassword, newPassword}, Bearer
//   200 {token, refreshToken, expiresIn}: a new session for this device;
//   every other session ends as with logout.
#include <fmt/format.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "auth/refresh_token.h"
#include "base/crypto.h"
#include "base/log.h"
#include "net/forwarded.h"
#include "signal/account_rules.h"
#include "signal/api_routes.h"

namespace turnkey::signal {

namespace {

// Attempts at a free generated handle before giving up with HANDLE_TAKEN.
constexpr int kHandleAttempts = 8;

struct SessionOutcome {
  bool bad_credentials = false;  // unknown account or wrong password
  sql::User user;
  IssuedSession session;
};

ApiError InvalidCredentials() {
  return ApiError::Unauthorized(api_code::kInvalidCredentials, "Invalid email or password");
}

// Errors of the password hasher (memory for argon2id) and of the store.
ApiError FromError(const base::Error& error) {
  if (error.code == base::ErrorCode::kResourceExhausted) {
    TK_LOG_WARN_EVERY(std::chrono::seconds(10), "signal: {}", error.message);
    return ApiError::Unavailable("The server is busy; try again shortly");
  }
  return FromStoreError(error);
}

// The length checks that must happen before any hashing.
std::expected<std::string, ApiError> BoundedPassword(const nlohmann::json& body,
                                                     std::string_view field) {
  auto password = RequiredString(body, field);
  if (password && password->size() > kMaxPasswordBytes) {
    return std::unexpected(ApiError::Validation(
        std::string(field), std::string(field) + " must be at most 1024 bytes"));
  }
  return password;
}

// A password being set (register, change): bounded, then the account rules.
std::expected<std::string, ApiError> NewPassword(const nlohmann::json& body,
                                                 std::string_view field) {
  auto password = BoundedPassword(body, field);
  if (password) {
    if (auto problem = CheckPassword(*password, field)) {
      return std::unexpected(ApiError::Validation(std::string(field), *problem));
    }
  }
  return password;
}

std::string RandomDigits(int count) {
  std::string digits;
  for (int i = 0; i < count; ++i) {
    digits.push_back(static_cast<char>('0' + base::RandomUint64() % 10));
  }
  return digits;
}

void Register(ApiContext& api, ApiCall call) {
  if (!api.settings().registration_open) {
    call.Fail(ApiError::Of(403, api_code::kRegistrationClosed,
                           "Registration is closed: ask the administrator for an account"));
    return;
  }
  auto body = call.JsonBody();
  if (!body) {
    call.Fail(body.error());
    return;
  }
  auto email = RequiredString(*body, "email");
  if (!email) {
    call.Fail(email.error());
    return;
  }
  if (auto problem = CheckEmail(*email)) {
    call.Fail(ApiError::Validation("email", *problem));
    return;
  }
  auto password = NewPassword(*body, "password");
  if (!password) {
    call.Fail(password.error());
    return;
  }
  auto handle = OptionalChecked(*body, "handle", &CheckHandle);
  if (!handle) {
    call.Fail(handle.error());
    return;
  }
  auto display_name = OptionalChecked(*body, "displayName", &CheckDisplayName);
  if (!display_name) {
    call.Fail(display_name.error());
    return;
  }
  // Per client address, taken or not: EMAIL_TAKEN answers tell which
  // addresses have accounts, and every account gets TURN credentials. A
  // program on this host (net::IsLocalClient: not a proxy's forward) is the
  // operator's own: its scripts and test suites register many accounts.
  const double rate = api.options().register_rate;
  if (rate > 0 && !net::IsLocalClient(call.request()) &&
      !api.register_limiter().Allow(call.request().peer, api.clock().Now())) {
    // Until one token is back, at most.
    call.Fail(ApiError::RateLimited(static_cast<int>(std::ceil(1.0 / rate))));
    return;
  }
  std::string account = NormalizeEmail(*email);
  auto job = [&api, email = std::move(*email), password = std::move(*password),
              handle = std::move(*handle),
              display_name = std::move(*display_name)]() -> base::Result<SessionOutcome> {
    auto hash = api.hasher().Hash(password);
    if (!hash) {
      return std::unexpected(hash.error());
    }
    sql::NewUser user;
    user.email = email;
    user.password_hash = std::move(*hash);
    user.now_ms = api.NowMs();
    base::Result<sql::User> created = base::Internal("no attempt");
    IssuedSession session;
    for (int attempt = 0; attempt < kHandleAttempts; ++attempt) {
      // A fresh id per attempt: a failed insert must not leave a half user.
      user.id = auth::NewUserId();
      user.handle = handle ? *handle : HandleFromEmail(email, RandomDigits(attempt < 4 ? 4 : 6));
      user.display_name = display_name ? *display_name : user.handle;
      // The account and its first login in one transaction: a 503 never
      // leaves an account its client was not told of.
      ApiContext::PendingSession pending = api.NewSession(user.id);
      user.refresh_token = std::move(pending.row);
      session = std::move(pending.session);
      created = api.Db([&](sql::Store& store) { return store.CreateUser(user); });
      if (!created && sql::IsCommitOutcomeUnknown(created.error())) {
        // The answer to the commit was lost: the id is ours, so its row
        // says whether the account (and its login) was made (then a retry
        // would only get EMAIL_TAKEN for an account its client never heard
        // of).
        auto made = api.Db([&](sql::Store& store) { return store.GetUserById(user.id); });
        if (made) {
          created = std::move(made);
        }
      }
      const bool generated_handle_taken = !created && !handle &&
                                          created.error().code == base::ErrorCode::kAlreadyExists &&
                                          created.error().message == sql::kHandleTaken;
      if (!generated_handle_taken) {
        break;
      }
    }
    if (!created) {
      return std::unexpected(created.error());
    }
    return SessionOutcome{false, std::move(*created), std::move(session)};
  };
  api.Run(std::move(call), std::move(job),
          [&api, account = std::move(account)](ApiCall call, base::Result<SessionOutcome> outcome) {
            if (!outcome) {
              call.Fail(FromError(outcome.error()));
              return;
            }
            // The address that made the account knows its password, as after
            // a login: the owner is not locked out by others' failures.
            api.throttle().RecordSuccess(account, call.request().peer, api.clock().Now());
            TK_LOG_INFO("signal: user {} registered", outcome->user.id);
            call.Ok(api.SessionJson(outcome->session, outcome->user), "Registered", 201);
          });
}

void Login(ApiContext& api, ApiCall call) {
  auto body = call.JsonBody();
  if (!body) {
    call.Fail(body.error());
    return;
  }
  auto email = RequiredString(*body, "email");
  if (!email) {
    call.Fail(email.error());
    return;
  }
  if (email->size() > kMaxEmailBytes) {
    call.Fail(ApiError::Validation("email", "email must be at most 254 bytes"));
    return;
  }
  auto password = BoundedPassword(*body, "password");
  if (!password) {
    call.Fail(password.error());
    return;
  }
  // Throttled whether or not the account exists, so a 429 reveals nothing.
  std::string account = NormalizeEmail(*email);
  auth::ThrottleVerdict verdict =
      api.throttle().Check(account, call.request().peer, api.clock().Now());
  if (!verdict.allowed) {
    call.Fail(ApiError::RateLimited(static_cast<int>(verdict.retry_after.count())));
    return;
  }
  auth::ThrottledAttempt attempt(api.throttle(), std::move(account), call.request().peer);
  auto job = [&api, email = std::move(*email),
              password = std::move(*password)]() -> base::Result<SessionOutcome> {
    // A second pass when the password hash changed between the check and
    // the session (a change, or another login's rehash): checked again
    // against the new one.
    for (int pass = 0;; ++pass) {
      auto user = api.Db([&](sql::Store& store) { return store.GetUserByEmail(email); });
      if (!user) {
        if (user.error().code != base::ErrorCode::kNotFound) {
          return std::unexpected(user.error());
        }
        // Same cost as a real verification: the answer's timing must not
        // tell whether the account exists.
        api.hasher().DummyVerify(password);
        return SessionOutcome{true, {}, {}};
      }
      auto match = api.hasher().Verify(password, user->password_hash);
      if (!match) {
        return std::unexpected(match.error());
      }
      if (!*match) {
        return SessionOutcome{true, {}, {}};
      }
      std::string checked = user->password_hash;
      if (api.hasher().NeedsRehash(checked)) {
        // Best effort: the login stands even if the upgrade fails, and a
        // password changed meanwhile is left alone (the session is refused
        // then).
        if (auto rehashed = api.hasher().Hash(password)) {
          if (api.Db([&](sql::Store& store) {
                return store.UpdatePasswordHash(user->id, checked, *rehashed, api.NowMs());
              })) {
            checked = std::move(*rehashed);
          }
        }
      }
      auto session = api.IssueLoginSession(user->id, checked);
      if (!session && session.error().code == base::ErrorCode::kPermissionDenied) {
        if (pass == 0) {
          continue;
        }
        return std::unexpected(base::Unavailable("the password changed during the login"));
      }
      if (!session) {
        return std::unexpected(session.error());
      }
      return SessionOutcome{false, std::move(*user), std::move(*session)};
    }
  };
  api.Run(std::move(call), std::move(job),
          [&api, attempt = std::move(attempt)](ApiCall call,
                                               base::Result<SessionOutcome> outcome) mutable {
            attempt.End();
            const std::string& account = attempt.account();
            if (!outcome) {
              call.Fail(FromError(outcome.error()));
              return;
            }
            const base::SocketAddress& peer = call.request().peer;
            if (outcome->bad_credentials) {
              api.throttle().RecordFailure(account, peer, api.clock().Now());
              call.Fail(InvalidCredentials());
              return;
            }
            api.throttle().RecordSuccess(account, peer, api.clock().Now());
            call.Ok(api.SessionJson(outcome->session, outcome->user), "Logged in");
          });
}

// Every refresh token of `user_id` was revoked at `revoked_at_ms`: the
// logins (refresh token families) that ended then. A refresh whose rotation
// committed just before the revocation signs its access token after the
// sign-out stamp, so the stamp alone lets that token through; its login is
// in this list, and ApiContext::LoginsEnded refuses every token of it. A
// failed read is logged and gives none: the ended-login poll
// (SignalService::PollEndedLogins) finds them a few seconds later.
std::vector<sql::EndedLogin> LoginsRevokedAt(ApiContext& api, const std::string& user_id,
                                             int64_t revoked_at_ms) {
  auto ended = api.Db([&](sql::Store& store) { return store.ListEndedLogins(revoked_at_ms - 1); });
  if (!ended) {
    TK_LOG_WARN("signal: cannot read the logins just ended for user {}: {}", user_id,
                ended.error().message);
    return {};
  }
  std::erase_if(*ended, [&](const sql::EndedLogin& login) { return login.user_id != user_id; });
  return std::move(*ended);
}

struct RefreshOutcome {
  sql::RotateResult rotation;
  std::string refresh_token;  // the new one, when rotated
  std::string access_token;
};

void Refresh(ApiContext& api, ApiCall call) {
  auto body = call.JsonBody();
  if (!body) {
    call.Fail(body.error());
    return;
  }
  auto token = RequiredString(*body, "refreshToken");
  if (!token) {
    call.Fail(token.error());
    return;
  }
  if (!auth::IsWellFormedRefreshToken(*token)) {
    call.Fail(
        ApiError::Unauthorized(api_code::kRefreshTokenInvalid, "The refresh token is invalid"));
    return;
  }
  auto job = [&api, old_hash = auth::RefreshTokenHash(*token)]() -> base::Result<RefreshOutcome> {
    RefreshOutcome outcome;
    const std::string next = auth::NewRefreshToken();
    const int64_t now = api.NowMs();
    const std::string next_hash = auth::RefreshTokenHash(next);
    auto rotated = api.Db([&](sql::Store& store) {
      return store.RotateRefreshToken(old_hash, next_hash,
                                      now + api.options().refresh_ttl.count() * 1000, now);
    });
    if (!rotated && sql::IsCommitOutcomeUnknown(rotated.error())) {
      // The answer to the commit was lost. A retry with the old token would
      // be taken as reuse and revoke the login; the new token's row says
      // whether the rotation went in, and then its answer is ours to give.
      auto issued = api.Db([&](sql::Store& store) { return store.FindRefreshToken(next_hash); });
      if (issued) {
        sql::RotateResult result;
        result.outcome = sql::RotateOutcome::kRotated;
        result.previous.token_hash = old_hash;
        result.previous.user_id = issued->user_id;
        result.previous.family_id = issued->family_id;
        result.issued = std::move(*issued);
        rotated = std::move(result);
      }
    }
    if (!rotated) {
      return std::unexpected(rotated.error());
    }
    outcome.rotation = std::move(*rotated);
    if (outcome.rotation.outcome == sql::RotateOutcome::kRotated) {
      outcome.refresh_token = next;
      outcome.access_token = api.SignAccessToken(outcome.rotation.previous.user_id,
                                                 outcome.rotation.previous.family_id);
    }
    return outcome;
  };
  api.Run(
      std::move(call), std::move(job), [&api](ApiCall call, base::Result<RefreshOutcome> outcome) {
        if (!outcome) {
          call.Fail(FromError(outcome.error()));
          return;
        }
        switch (outcome->rotation.outcome) {
          case sql::RotateOutcome::kRotated: {
            nlohmann::json data = nlohmann::json::object();
            data["token"] = outcome->access_token;
            data["refreshToken"] = outcome->refresh_token;
            data["expiresIn"] = api.options().access_ttl.count();
            call.Ok(std::move(data), "Token refreshed");
            return;
          }
          case sql::RotateOutcome::kExpired:
            call.Fail(ApiError::Unauthorized(api_code::kRefreshTokenExpired,
                                             "The refresh token expired; log in again"));
            return;
          case sql::RotateOutcome::kReused:
            TK_LOG_WARN("signal: refresh token reuse for user {}; its login is revoked",
                        outcome->rotation.previous.user_id);
            // Treated as stolen: the access tokens of that login end too.
            api.EndLogin(outcome->rotation.previous.user_id, outcome->rotation.previous.family_id);
            call.Fail(ApiError::Unauthorized(
                api_code::kRefreshTokenReused,
                "The refresh token was already used; this login was revoked"));
            return;
          case sql::RotateOutcome::kRevoked:
            api.EndLogin(outcome->rotation.previous.user_id, outcome->rotation.previous.family_id);
            call.Fail(ApiError::Unauthorized(api_code::kRefreshTokenRevoked,
                                             "The refresh token was revoked; log in again"));
            return;
          case sql::RotateOutcome::kNotFound:
            break;
        }
        call.Fail(
            ApiError::Unauthorized(api_code::kRefreshTokenInvalid, "The refresh token is invalid"));
      });
}

struct LogoutOutcome {
  int64_t revoked = 0;  // refresh tokens
  std::vector<sql::EndedLogin> ended;
};

void Logout(ApiContext& api, ApiCall call) {
  auto body = call.JsonBody();
  if (!body) {
    call.Fail(body.error());
    return;
  }
  // Accepted for clients that send it; every token of the user is revoked
  // anyway.
  if (auto token = OptionalString(*body, "refreshToken"); !token) {
    call.Fail(token.error());
    return;
  }
  // The sign-out instant: access tokens issued before it are refused, a
  // login after it (on another device) is not; the logins the revocation
  // ended are refused whenever their tokens were signed.
  const int64_t stamp = api.IssueStamp();
  auto job = [&api, user_id = call.user_id()]() -> base::Result<LogoutOutcome> {
    const int64_t now = api.NowMs();
    auto revoked =
        api.Db([&](sql::Store& store) { return store.RevokeAllRefreshTokens(user_id, now); });
    if (!revoked) {
      return std::unexpected(revoked.error());
    }
    return LogoutOutcome{*revoked, LoginsRevokedAt(api, user_id, now)};
  };
  api.Run(std::move(call), std::move(job),
          [&api, stamp](ApiCall call, base::Result<LogoutOutcome> outcome) {
            if (!outcome) {
              call.Fail(FromError(outcome.error()));
              return;
            }
            api.LoginsEnded(outcome->ended);
            api.EndUserSessions(call.user_id(), call.token(), stamp, "logout");
            call.Ok(nlohmann::json{{"revokedTokens", outcome->revoked}}, "Logged out");
          });
}

struct PasswordOutcome {
  bool bad_credentials = false;
  IssuedSession session;
  int64_t signed_out_stamp = 0;        // the other sessions end here; `session` was issued after
  std::vector<sql::EndedLogin> ended;  // the logins the revocation ended
};

void ChangePassword(ApiContext& api, ApiCall call) {
  auto body = call.JsonBody();
  if (!body) {
    call.Fail(body.error());
    return;
  }
  auto current = BoundedPassword(*body, "currentPassword");
  if (!current) {
    call.Fail(current.error());
    return;
  }
  auto next = NewPassword(*body, "newPassword");
  if (!next) {
    call.Fail(next.error());
    return;
  }
  // A stolen access token must not buy unlimited guesses either.
  std::string account = "id:" + call.user_id();
  auth::ThrottleVerdict verdict =
      api.throttle().Check(account, call.request().peer, api.clock().Now());
  if (!verdict.allowed) {
    call.Fail(ApiError::RateLimited(static_cast<int>(verdict.retry_after.count())));
    return;
  }
  auth::ThrottledAttempt attempt(api.throttle(), std::move(account), call.request().peer);
  auto job = [&api, user_id = call.user_id(), current = std::move(*current),
              next = std::move(*next)]() -> base::Result<PasswordOutcome> {
    auto user = api.Db([&](sql::Store& store) { return store.GetUserById(user_id); });
    if (!user) {
      return std::unexpected(user.error());
    }
    auto match = api.hasher().Verify(current, user->password_hash);
    if (!match) {
      return std::unexpected(match.error());
    }
    if (!*match) {
      return PasswordOutcome{true, {}, 0, {}};
    }
    auto hash = api.hasher().Hash(next);
    if (!hash) {
      return std::unexpected(hash.error());
    }
    const int64_t stamp = api.IssueStamp();
    const int64_t now = api.NowMs();
    // One transaction with this device's new login: a failure leaves the old
    // password and its sessions, and once it is in, nothing can fail before
    // the other sessions are ended.
    ApiContext::PendingSession pending = api.NewSession(user_id);
    auto changed = api.Db(
        [&](sql::Store& store) { return store.ChangePassword(user_id, *hash, now, &pending.row); });
    if (!changed && sql::IsCommitOutcomeUnknown(changed.error())) {
      // The answer to the commit was lost: the new login's row says whether
      // it went in.
      if (api.Db(
              [&](sql::Store& store) { return store.FindRefreshToken(pending.row.token_hash); })) {
        changed = 0;
      }
    }
    if (!changed) {
      return std::unexpected(changed.error());
    }
    std::vector<sql::EndedLogin> ended = LoginsRevokedAt(api, user_id, now);
    return PasswordOutcome{false, std::move(pending.session), stamp, std::move(ended)};
  };
  api.Run(std::move(call), std::move(job),
          [&api, attempt = std::move(attempt)](ApiCall call,
                                               base::Result<PasswordOutcome> outcome) mutable {
            attempt.End();
            const std::string& account = attempt.account();
            if (!outcome) {
              call.Fail(FromError(outcome.error()));
              return;
            }
            if (outcome->bad_credentials) {
              api.throttle().RecordFailure(account, call.request().peer, api.clock().Now());
              ApiError error = ApiError::Unauthorized(api_code::kInvalidCredentials,
                                                      "The current password is wrong");
              error.field = "currentPassword";
              call.Fail(error);
              return;
            }
            api.throttle().RecordSuccess(account, call.request().peer, api.clock().Now());
            TK_LOG_INFO("signal: user {} changed their password", call.user_id());
            api.LoginsEnded(outcome->ended);
            api.EndUserSessions(call.user_id(), call.token(), outcome->signed_out_stamp,
                                "password_changed");
            nlohmann::json data = nlohmann::json::object();
            data["token"] = outcome->session.access_token;
            data["refreshToken"] = outcome->session.refresh_token;
            data["expiresIn"] = outcome->session.access_expires_in;
            call.Ok(std::move(data), "Password changed");
          });
}

}  // namespace

base::Status AddAuthRoutes(ApiContext& api) {
  using Access = ApiContext::Access;
  return api.AddAll({{"POST", "/api/auth/register", Access::kPublic, &Register},
                     {"POST", "/api/auth/login", Access::kPublic, &Login},
                     {"POST", "/api/auth/refresh", Access::kPublic, &Refresh},
                     {"POST", "/api/auth/logout", Access::kUser, &Logout},
                     {"POST", "/api/auth/password", Access::kUser, &ChangePassword}});
}

}  // namespace turnkey::signal
