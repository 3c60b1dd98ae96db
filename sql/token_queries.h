// The SQL of the refresh_tokens table, as functions over one Connection, for
// SqlStore. Internal to sql/. Preconditions: ids were validated.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "sql/database.h"
#include "sql/store.h"

namespace turnkey::sql {

// token_hash, user_id and family_id are ids (store.h rules).
base::Status ValidateRefreshToken(const RefreshToken& token);

// kNotFound if there is no such token.
base::Result<RefreshToken> SelectRefreshToken(Connection& conn, std::string_view token_hash);
// A live token (replaced_by and revoked_at_ms ignored). kAlreadyExists
// (kIdTaken) for a duplicate hash, kNotFound for an unknown user.
base::Status InsertRefreshTokenRow(Connection& conn, const RefreshToken& token);
// Store::RotateRefreshToken inside the caller's transaction.
base::Result<RotateResult> RotateRefreshTokenRows(Connection& conn, std::string_view old_hash,
                                                  std::string_view new_hash,
                                                  int64_t new_expires_at_ms, int64_t now_ms);
// Each returns the number of rows changed.
base::Result<int64_t> RevokeRefreshTokenRow(Connection& conn, std::string_view token_hash,
                                            int64_t now_ms);
base::Result<int64_t> RevokeUserRefreshTokens(Connection& conn, std::string_view user_id,
                                              int64_t now_ms);
// Store::ListEndedLogins.
base::Result<std::vector<EndedLogin>> SelectEndedLogins(Connection& conn, int64_t since_ms);
base::Result<int64_t> DeleteExpiredRefreshTokens(Connection& conn, int64_t expired_before_ms,
                                                 int64_t limit);

}  // namespace turnkey::sql
