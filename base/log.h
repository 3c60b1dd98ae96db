// Logging facade over spdlog.
//
// One process-wide logger writing to stderr (journald picks it up under
// systemd), as text or one JSON object per line. Call sites use the TK_LOG_*
// macros with fmt-style formatting; nothing is formatted below the level.
// Never pass a secret or a password; never log per packet above debug.
#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>

#include "base/status.h"

namespace turnkey::base {

enum class LogLevel { kTrace, kDebug, kInfo, kWarn, kError, kOff };
enum class LogFormat { kText, kJson };

// Parses "trace|debug|info|warn|error|off".
Result<LogLevel> ParseLogLevel(std::string_view name);
// Parses "text|json".
Result<LogFormat> ParseLogFormat(std::string_view name);

// (Re)configures the process logger. Safe to call again on reload; thread-safe.
void InitLogging(LogLevel level, LogFormat format);
void SetLogLevel(LogLevel level);

spdlog::logger& Logger();

// Keeps a line that can repeat with every request (a database outage, an
// overload) to one per `period`, so the log does not grow with the request
// rate exactly when something is wrong. Thread-safe. Call sites use
// TK_LOG_WARN_EVERY (below).
class LogLimiter {
 public:
  explicit LogLimiter(std::chrono::steady_clock::duration period) : period_(period) {}
  // True when the line may be written now; `held_back` is then how many were
  // not written since the last one.
  bool Allow(uint64_t* held_back) { return Allow(held_back, std::chrono::steady_clock::now()); }
  bool Allow(uint64_t* held_back, std::chrono::steady_clock::time_point now);

 private:
  const std::chrono::steady_clock::duration period_;
  std::mutex mutex_;
  std::chrono::steady_clock::time_point last_{};
  bool logged_ = false;
  uint64_t held_ = 0;
};

// "" or " (N more held back since the last such line)": lines of one call
// site that were not written (whatever their arguments).
std::string HeldBack(uint64_t held_back);

}  // namespace turnkey::base

#define TK_LOG_TRACE(...) \
  SPDLOG_LOGGER_CALL(&::turnkey::base::Logger(), spdlog::level::trace, __VA_ARGS__)
#define TK_LOG_DEBUG(...) \
  SPDLOG_LOGGER_CALL(&::turnkey::base::Logger(), spdlog::level::debug, __VA_ARGS__)
#define TK_LOG_INFO(...) \
  SPDLOG_LOGGER_CALL(&::turnkey::base::Logger(), spdlog::level::info, __VA_ARGS__)
#define TK_LOG_WARN(...) \
  SPDLOG_LOGGER_CALL(&::turnkey::base::Logger(), spdlog::level::warn, __VA_ARGS__)
#define TK_LOG_ERROR(...) \
  SPDLOG_LOGGER_CALL(&::turnkey::base::Logger(), spdlog::level::err, __VA_ARGS__)

// TK_LOG_WARN, at most once per `period` from this call site; a line written
// after some were held back ends with " (N more held back since the last
// such line)", counting every line of this call site held back.
// `format` must be a string literal.
#define TK_LOG_WARN_EVERY(period, format, ...)                                        \
  do {                                                                                \
    static ::turnkey::base::LogLimiter tk_log_limiter_(period);                       \
    if (uint64_t tk_log_held_ = 0; tk_log_limiter_.Allow(&tk_log_held_)) {            \
      TK_LOG_WARN(format "{}", __VA_ARGS__, ::turnkey::base::HeldBack(tk_log_held_)); \
    }                                                                                 \
  } while (false)

// TK_LOG_DEBUG, limited as TK_LOG_WARN_EVERY; one level check while debug is
// off.
#define TK_LOG_DEBUG_EVERY(period, format, ...)                                                  \
  do {                                                                                           \
    static ::turnkey::base::LogLimiter tk_log_limiter_(period);                                  \
    if (uint64_t tk_log_held_ = 0; ::turnkey::base::Logger().should_log(spdlog::level::debug) && \
                                   tk_log_limiter_.Allow(&tk_log_held_)) {                       \
      TK_LOG_DEBUG(format "{}", __VA_ARGS__, ::turnkey::base::HeldBack(tk_log_held_));           \
    }                                                                                            \
  } while (false)
