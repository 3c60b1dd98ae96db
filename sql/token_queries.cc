#include "sql/token_queries.h"

#include <fmt/format.h>

#include <array>
#include <string>
#include <utility>

#include "sql/fields.h"
#include "sql/query_util.h"
#include "sql/row_reader.h"

namespace turnkey::sql {

namespace {

// The columns ReadToken() expects, in order.
constexpr std::string_view kTokenColumns =
    "token_hash, user_id, family_id, replaced_by, created_at, expires_at, revoked_at";
constexpr std::string_view kInsertToken =
    "INSERT INTO refresh_tokens (token_hash, user_id, family_id, replaced_by, created_at, "
    "expires_at, revoked_at) VALUES (?, ?, ?, NULL, ?, ?, NULL)";
constexpr std::string_view kRotateOld =
    "UPDATE refresh_tokens SET revoked_at = ?, replaced_by = ? "
    "WHERE token_hash = ? AND revoked_at IS NULL AND expires_at > ?";
constexpr std::string_view kRevokeFamily =
    "UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL";
constexpr std::string_view kRevokeToken =
    "UPDATE refresh_tokens SET revoked_at = ? WHERE token_hash = ? AND revoked_at IS NULL";
constexpr std::string_view kRevokeUserTokens =
    "UPDATE refresh_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL";
// A family is ended when none of its tokens is unrevoked; the inner select
// (index refresh_tokens_revoked) keeps a poll from reading the whole table.
constexpr std::string_view kEndedLogins =
    "SELECT family_id, MIN(user_id), MAX(revoked_at) FROM refresh_tokens "
    "WHERE family_id IN (SELECT family_id FROM refresh_tokens WHERE revoked_at > ?) "
    "GROUP BY family_id HAVING COUNT(revoked_at) = COUNT(*)";
// The inner select is wrapped in a derived table: MySQL and MariaDB refuse
// LIMIT inside IN (...) and a subquery on the table being deleted from.
constexpr std::string_view kPurgeTokens =
    "DELETE FROM refresh_tokens WHERE token_hash IN (SELECT token_hash FROM (SELECT token_hash "
    "FROM refresh_tokens WHERE expires_at <= ? ORDER BY expires_at LIMIT ?) AS expired)";

base::Result<RefreshToken> ReadToken(const Row& row) {
  RowReader r(row);
  RefreshToken token;
  token.token_hash = r.Text();
  token.user_id = r.Text();
  token.family_id = r.Text();
  token.replaced_by = r.OptText().value_or("");
  token.created_at_ms = r.Int();
  token.expires_at_ms = r.Int();
  token.revoked_at_ms = r.OptInt();
  if (!r.ok()) {
    return base::Internal("refresh_tokens: unexpected row");
  }
  return token;
}

base::Result<int64_t> Changed(Connection& conn, std::string_view sql,
                              std::span<const Param> params) {
  auto result = conn.Exec(sql, params);
  if (!result) {
    return ErrorOf(result);
  }
  return result->affected_rows;
}

}  // namespace

base::Status ValidateRefreshToken(const RefreshToken& token) {
  for (const auto& [name, value] :
       {std::pair<std::string_view, std::string_view>{"token_hash", token.token_hash},
        {"user_id", token.user_id},
        {"family_id", token.family_id}}) {
    if (auto ok = CheckId(name, value); !ok) {
      return ok;
    }
  }
  return base::Ok();
}

base::Result<RefreshToken> SelectRefreshToken(Connection& conn, std::string_view token_hash) {
  static const std::string sql =
      fmt::format("SELECT {} FROM refresh_tokens WHERE token_hash = ?", kTokenColumns);
  const std::array<Param, 1> params{token_hash};
  auto result = conn.Exec(sql, params);
  if (!result) {
    return ErrorOf(result);
  }
  if (result->rows.empty()) {
    return base::NotFound("refresh token not found");
  }
  return ReadToken(result->rows.front());
}

base::Status InsertRefreshTokenRow(Connection& conn, const RefreshToken& token) {
  const std::array<Param, 5> params{
      std::string_view(token.token_hash), std::string_view(token.user_id),
      std::string_view(token.family_id), token.created_at_ms, token.expires_at_ms};
  auto inserted = conn.Exec(kInsertToken, params);
  if (inserted) {
    return base::Ok();
  }
  if (inserted.error().code == base::ErrorCode::kAlreadyExists) {
    return base::MakeError(base::ErrorCode::kAlreadyExists, std::string(kIdTaken));
  }
  if (inserted.error().code == base::ErrorCode::kNotFound) {
    return base::NotFound("user not found");
  }
  return ErrorOf(inserted);
}

base::Result<RotateResult> RotateRefreshTokenRows(Connection& conn, std::string_view old_hash,
                                                  std::string_view new_hash,
                                                  int64_t new_expires_at_ms, int64_t now_ms) {
  // The conditional UPDATE is the decision: of two concurrent rotations only
  // one matches a live row, the other then sees it rotated (reuse).
  const std::array<Param, 4> rotate{now_ms, new_hash, old_hash, now_ms};
  auto rotated = Changed(conn, kRotateOld, rotate);
  if (!rotated) {
    return ErrorOf(rotated);
  }
  RotateResult out;
  auto old = SelectRefreshToken(conn, old_hash);
  if (!old) {
    if (old.error().code == base::ErrorCode::kNotFound) {
      out.outcome = RotateOutcome::kNotFound;
      return out;
    }
    return ErrorOf(old);
  }
  out.previous = *old;
  if (*rotated == 1) {
    RefreshToken issued;
    issued.token_hash = std::string(new_hash);
    issued.user_id = old->user_id;
    issued.family_id = old->family_id;
    issued.created_at_ms = now_ms;
    issued.expires_at_ms = new_expires_at_ms;
    if (auto inserted = InsertRefreshTokenRow(conn, issued); !inserted) {
      return std::unexpected(inserted.error());
    }
    out.outcome = RotateOutcome::kRotated;
    out.issued = std::move(issued);
    return out;
  }
  if (old->revoked_at_ms) {
    const std::array<Param, 2> family{now_ms, std::string_view(old->family_id)};
    if (auto revoked = Changed(conn, kRevokeFamily, family); !revoked) {
      return ErrorOf(revoked);
    }
    out.outcome = old->replaced_by.empty() ? RotateOutcome::kRevoked : RotateOutcome::kReused;
    return out;
  }
  out.outcome = RotateOutcome::kExpired;
  return out;
}

base::Result<int64_t> RevokeRefreshTokenRow(Connection& conn, std::string_view token_hash,
                                            int64_t now_ms) {
  const std::array<Param, 2> params{now_ms, token_hash};
  return Changed(conn, kRevokeToken, params);
}

base::Result<int64_t> RevokeUserRefreshTokens(Connection& conn, std::string_view user_id,
                                              int64_t now_ms) {
  const std::array<Param, 2> params{now_ms, user_id};
  auto first = Changed(conn, kRevokeUserTokens, params);
  if (!first) {
    return first;
  }
  // Twice. On MariaDB (read committed) the first statement skips a token a
  // rotation inserted but had not committed yet; it waits for that rotation
  // on the old token's row lock, so once it returns the new token is
  // committed, and a second statement (which reads rows committed since)
  // revokes it. A rotation that comes later finds its old token locked or
  // revoked by this one and issues nothing. SQLite runs one writer at a time:
  // the second statement changes nothing there.
  auto second = Changed(conn, kRevokeUserTokens, params);
  if (!second) {
    return second;
  }
  return *first + *second;
}

base::Result<std::vector<EndedLogin>> SelectEndedLogins(Connection& conn, int64_t since_ms) {
  const std::array<Param, 1> params{since_ms};
  auto result = conn.Exec(kEndedLogins, params);
  if (!result) {
    return ErrorOf(result);
  }
  std::vector<EndedLogin> logins;
  logins.reserve(result->rows.size());
  for (const Row& row : result->rows) {
    RowReader r(row);
    EndedLogin login;
    login.family_id = r.Text();
    login.user_id = r.Text();
    login.ended_at_ms = r.Int();
    if (!r.ok()) {
      return base::Internal("refresh_tokens: unexpected ended-login row");
    }
    logins.push_back(std::move(login));
  }
  return logins;
}

base::Result<int64_t> DeleteExpiredRefreshTokens(Connection& conn, int64_t expired_before_ms,
                                                 int64_t limit) {
  const std::array<Param, 2> params{expired_before_ms, limit};
  return Changed(conn, kPurgeTokens, params);
}

}  // namespace turnkey::sql
