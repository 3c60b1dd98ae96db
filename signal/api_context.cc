#include "signal/api_context.h"

#include <algorithm>
#include <vector>

#include "auth/refresh_token.h"
#include "base/log.h"
#include "signal/api_json.h"

namespace turnkey::signal {

namespace {

// Sign-out records are pruned once the table holds this many entries.
constexpr size_t kRevocationPruneThreshold = 1024;

// The TURN URIs need a secret to mint credentials; without one only the
// STUN URIs are handed out.
std::vector<std::string> UsableIceUrls(const SignalSettings& settings) {
  if (!settings.turn_secret.empty()) {
    return settings.ice_urls;
  }
  std::vector<std::string> urls;
  for (const std::string& url : settings.ice_urls) {
    if (url.starts_with("stun:") || url.starts_with("stuns:")) {
      urls.push_back(url);
    }
  }
  return urls;
}

}  // namespace

ApiContext::ApiContext(net::EventLoop& loop, net::WorkQueue& queue, net::Router& router,
                       sql::Store& store, auth::Jwt jwt, auth::PasswordHasher hasher,
                       auth::LoginThrottle throttle, const base::Clock& clock,
                       const metrics::SignalMetrics& metrics, metrics::Shard& shard,
                       ApiContextOptions options, SignalSettings settings)
    : loop_(loop),
      queue_(queue),
      router_(router),
      store_(store),
      jwt_(std::move(jwt)),
      hasher_(std::move(hasher)),
      throttle_(std::move(throttle)),
      clock_(clock),
      metrics_(metrics),
      shard_(shard),
      options_(options),
      register_limiter_(options_.register_rate, std::max(1.0, options_.register_burst), 4096) {
  SetSettings(std::move(settings));
}

void ApiContext::SetSettings(SignalSettings settings) {
  net::CorsOptions cors;
  cors.allowed_origins = settings.allowed_origins;
  cors_ = std::make_shared<const net::Cors>(std::move(cors));
  settings_ = std::move(settings);
}

base::Status ApiContext::Add(std::string_view method, std::string_view pattern, Access access,
                             Handler handler) {
  auto wrapped = [this, access, handler = std::move(handler)](net::HttpRequest request,
                                                              net::Responder responder) {
    ApiCall call(std::move(request), std::move(responder), cors_);
    if (cors_->Check(call.request()) == net::CorsVerdict::kDenied) {
      call.Fail(ApiError::OriginNotAllowed());
      return;
    }
    if (call.request().body.size() > options_.max_body_bytes) {
      call.Fail(ApiError::PayloadTooLarge());
      return;
    }
    if (access == Access::kUser) {
      auto token = Authenticate(call.request());
      if (!token) {
        call.Fail(token.error());
        return;
      }
      call.SetToken(std::move(*token));
    }
    handler(std::move(call));
  };
  return router_.Add(method, pattern, std::move(wrapped));
}

base::Status ApiContext::AddAll(std::initializer_list<RouteSpec> routes) {
  for (const RouteSpec& route : routes) {
    auto added =
        Add(route.method, route.pattern, route.access,
            [this, handler = route.handler](ApiCall call) { handler(*this, std::move(call)); });
    if (!added) {
      return added;
    }
  }
  return base::Ok();
}

std::expected<AccessToken, ApiError> ApiContext::Authenticate(
    const net::HttpRequest& request) const {
  // RFC 9110 section 5.3: Authorization is not a list, so two fields are a
  // malformed request; a proxy in front may have checked the other one.
  if (request.headers.Count("Authorization") > 1) {
    return std::unexpected(
        ApiError::Validation("Authorization", "send exactly one Authorization header"));
  }
  auto header = request.Header("Authorization");
  if (!header) {
    return std::unexpected(
        ApiError::Unauthorized(api_code::kUnauthorized, "Authorization: Bearer token required"));
  }
  std::string_view value = *header;
  // RFC 6750 section 2.1: the scheme is case-insensitive.
  constexpr std::string_view kScheme = "bearer ";
  if (value.size() <= kScheme.size() || !net::EqualsIgnoreCase(value.substr(0, 7), kScheme)) {
    return std::unexpected(
        ApiError::Unauthorized(api_code::kUnauthorized, "Authorization: Bearer token required"));
  }
  value.remove_prefix(kScheme.size());
  while (!value.empty() && value.front() == ' ') {
    value.remove_prefix(1);
  }
  return VerifyAccessToken(value);
}

std::expected<AccessToken, ApiError> ApiContext::VerifyAccessToken(std::string_view token) const {
  // Issued up to the last stamp this process gave: after the wall clock
  // stepped back, tokens keep being stamped from where it was (IssueStamp)
  // and must not read as issued in the future. Expiry goes by the clock.
  const int64_t now = NowSeconds();
  auto claims = jwt_.Verify(token, kAccessTokenKind, now, LatestIssueSeconds());
  if (!claims) {
    if (claims.error().kind == auth::JwtErrorKind::kExpired) {
      return std::unexpected(
          ApiError::Unauthorized(api_code::kTokenExpired, "The access token expired; refresh it"));
    }
    return std::unexpected(
        ApiError::Unauthorized(api_code::kTokenInvalid, "The access token is invalid"));
  }
  auto signed_out = signed_out_at_.find(claims->subject);
  if ((signed_out != signed_out_at_.end() && claims->issued_at_us < signed_out->second) ||
      revoked_token_ids_.contains(claims->id) ||
      (!claims->session.empty() && ended_logins_.contains(claims->session))) {
    return std::unexpected(
        ApiError::Unauthorized(api_code::kTokenRevoked, "This session was signed out"));
  }
  return AccessToken{std::move(claims->subject), std::move(claims->id), claims->expires_at,
                     std::move(claims->session)};
}

int64_t ApiContext::LatestIssueSeconds() const {
  return std::max(NowSeconds(), last_stamp_.load(std::memory_order_relaxed) / 1'000'000);
}

int64_t ApiContext::IssueStamp() const {
  const int64_t wall_us = NowMs() * 1000;
  int64_t last = last_stamp_.load(std::memory_order_relaxed);
  int64_t next = 0;
  do {
    next = std::max(wall_us, last + 1);
  } while (!last_stamp_.compare_exchange_weak(last, next, std::memory_order_relaxed));
  return next;
}

std::string ApiContext::SignAccessToken(const std::string& user_id,
                                        const std::string& family_id) const {
  const int64_t stamp = IssueStamp();
  auth::JwtClaims claims =
      jwt_.NewClaims(user_id, kAccessTokenKind, stamp / 1'000'000, options_.access_ttl.count());
  claims.issued_at_us = stamp;
  claims.session = family_id;
  return jwt_.Sign(claims);
}

base::Result<IssuedSession> ApiContext::IssueLoginSession(const std::string& user_id,
                                                          std::string_view password_hash) const {
  PendingSession pending = NewSession(user_id);
  auto inserted = Db(
      [&](sql::Store& store) { return store.InsertLoginRefreshToken(pending.row, password_hash); });
  if (!inserted) {
    return std::unexpected(inserted.error());
  }
  return std::move(pending.session);
}

ApiContext::PendingSession ApiContext::NewSession(const std::string& user_id) const {
  PendingSession pending;
  IssuedSession& session = pending.session;
  session.refresh_token = auth::NewRefreshToken();
  sql::RefreshToken& row = pending.row;
  row.token_hash = auth::RefreshTokenHash(session.refresh_token);
  row.user_id = user_id;
  row.family_id = sql::GenerateId();
  row.created_at_ms = NowMs();
  row.expires_at_ms = row.created_at_ms + options_.refresh_ttl.count() * 1000;
  session.access_token = SignAccessToken(user_id, row.family_id);
  session.access_expires_in = options_.access_ttl.count();
  return pending;
}

base::Result<auth::IceServerList> ApiContext::IceServers(std::string_view user_id) const {
  const std::vector<std::string> urls = UsableIceUrls(settings_);
  return auth::BuildIceServers(urls, settings_.turn_secret, user_id, settings_.ice_ttl.count(),
                               NowSeconds());
}

nlohmann::json ApiContext::SessionJson(const IssuedSession& session, const sql::User& user) const {
  nlohmann::json data = nlohmann::json::object();
  data["token"] = session.access_token;
  data["refreshToken"] = session.refresh_token;
  data["expiresIn"] = session.access_expires_in;
  data["user"] = UserJson(user);
  auto ice = IceServers(user.id);
  if (ice) {
    data["iceServers"] = auth::IceServersJson(*ice);
    data["iceServersTtl"] = ice->ttl_seconds;
  } else {
    // The config loader checks the URIs, so this is a bug, not bad input;
    // the login itself still succeeds.
    TK_LOG_ERROR("signal: ice servers: {}", ice.error().message);
    data["iceServers"] = nlohmann::json::array();
    data["iceServersTtl"] = 0;
  }
  return data;
}

void ApiContext::EndUserSessions(const std::string& user_id, const AccessToken& current,
                                 int64_t signed_out_stamp, std::string_view reason) {
  PruneRevocations(NowMs());
  int64_t& signed_out = signed_out_at_[user_id];
  signed_out = std::max(signed_out, signed_out_stamp);
  if (!current.token_id.empty()) {
    revoked_token_ids_[current.token_id] = current.expires_at;
  }
  if (signed_out_hook_) {
    signed_out_hook_(user_id, current, signed_out_stamp, reason);
  }
}

void ApiContext::EndLogin(const std::string& user_id, const std::string& family_id) {
  if (family_id.empty()) {
    return;
  }
  LoginsEnded({sql::EndedLogin{family_id, user_id, NowMs()}});
}

void ApiContext::LoginsEnded(const std::vector<sql::EndedLogin>& logins) {
  const int64_t now_ms = NowMs();
  PruneRevocations(now_ms);
  std::vector<sql::EndedLogin> news;
  for (const sql::EndedLogin& login : logins) {
    // Tokens of the login signed after it ended are refused too (a refresh
    // racing with the revocation); none signed before outlives one
    // access-token lifetime. Rounded up to the next second.
    // Issue times run up to the last stamp (after a step back of the clock)
    // and another node's up to the leeway beyond it.
    const int64_t until = std::max((login.ended_at_ms + 999) / 1000, LatestIssueSeconds()) +
                          options_.access_ttl.count() + jwt_.options().issued_leeway_seconds;
    if (login.family_id.empty() || until <= now_ms / 1000) {
      continue;
    }
    auto [entry, added] = ended_logins_.try_emplace(login.family_id, until);
    if (!added) {
      entry->second = std::max(entry->second, until);
      continue;
    }
    news.push_back(login);
  }
  if (!news.empty() && logins_ended_hook_) {
    logins_ended_hook_(news);
  }
}

void ApiContext::PruneRevocations(int64_t now_ms) {
  if (signed_out_at_.size() + revoked_token_ids_.size() + ended_logins_.size() <
      kRevocationPruneThreshold) {
    return;
  }
  // A sign-out matters only while tokens issued before it can still be
  // valid, i.e. for one access-token lifetime.
  const int64_t horizon_us = (now_ms - options_.access_ttl.count() * 1000) * 1000;
  std::erase_if(signed_out_at_,
                [horizon_us](const auto& entry) { return entry.second < horizon_us; });
  const int64_t now = now_ms / 1000;
  std::erase_if(revoked_token_ids_, [now](const auto& entry) { return entry.second <= now; });
  std::erase_if(ended_logins_, [now](const auto& entry) { return entry.second <= now; });
}

}  // namespace turnkey::signal
