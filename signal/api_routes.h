// The REST routes of the account service (DESIGN.md section 5), one
// function per area, each adding its routes to an ApiContext. The routes
// are documented where they are implemented.
#pragma once

#include "base/status.h"
#include "signal/api_context.h"

namespace turnkey::signal {

// auth_routes.cc: POST /api/auth/register, /login, /refresh, /logout,
// /password.
[[nodiscard]] base::Status AddAuthRoutes(ApiContext& api);
// user_routes.cc: GET and PATCH /api/users/me, GET /api/users/search.
[[nodiscard]] base::Status AddUserRoutes(ApiContext& api);
// contact_routes.cc: GET, POST, PUT /api/contacts, DELETE
// /api/contacts/:userId.
[[nodiscard]] base::Status AddContactRoutes(ApiContext& api);
// call_history_routes.cc: GET /api/calls/history, GET /api/calls/missed,
// DELETE /api/calls/history/:callId.
[[nodiscard]] base::Status AddCallHistoryRoutes(ApiContext& api);
// turn_routes.cc: GET /api/turn/credentials, GET /healthz, GET /readyz.
[[nodiscard]] base::Status AddTurnAndHealthRoutes(ApiContext& api);

}  // namespace turnkey::signal
