// Status and Result: the error type of the control plane.
//
// A fallible function returns `Result<T>` (std::expected<T, Error>) or `Status`
// (std::expected<void, Error>). Errors carry a coarse code callers can branch on
// and a human-readable message for logs and CLI output. Nothing here throws.
#pragma once

#include <expected>
#include <string>
#include <utility>

namespace turnkey::base {

enum class ErrorCode {
  kInvalidArgument,   // the caller's input is malformed or out of range
  kNotFound,          // a named thing (file, key, user) does not exist
  kAlreadyExists,     // a unique thing exists already
  kPermissionDenied,  // refused by policy
  kUnavailable,       // a dependency (socket, database) failed; retry may work
  kResourceExhausted, // a quota, pool or queue is full
  kInternal,          // our own invariant broke
};

// Returns a stable lower-case name for `code`, e.g. "invalid_argument".
const char* ErrorCodeName(ErrorCode code);

struct Error {
  ErrorCode code = ErrorCode::kInternal;
  std::string message;
};

template <typename T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

inline std::unexpected<Error> MakeError(ErrorCode code, std::string message) {
  return std::unexpected<Error>(Error{code, std::move(message)});
}
inline std::unexpected<Error> InvalidArgument(std::string message) {
  return MakeError(ErrorCode::kInvalidArgument, std::move(message));
}
inline std::unexpected<Error> Unavailable(std::string message) {
  return MakeError(ErrorCode::kUnavailable, std::move(message));
}
inline std::unexpected<Error> NotFound(std::string message) {
  return MakeError(ErrorCode::kNotFound, std::move(message));
}
inline std::unexpected<Error> Internal(std::string message) {
  return MakeError(ErrorCode::kInternal, std::move(message));
}

inline Status Ok() { return {}; }

}  // namespace turnkey::base
