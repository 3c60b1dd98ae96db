// Logging facade over spdlog.
//
// One process-wide logger writing to stderr (journald picks it up under
// systemd), as text or one JSON object per line. Call sites use the TK_LOG_*
// macros with fmt-style formatting; nothing is formatted below the level.
// Never pass a secret or a password; never log per packet above debug.
#pragma once

#include <spdlog/spdlog.h>

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

}  // namespace turnkey::base

#define TK_LOG_TRACE(...) SPDLOG_LOGGER_CALL(&::turnkey::base::Logger(), spdlog::level::trace, __VA_ARGS__)
#define TK_LOG_DEBUG(...) SPDLOG_LOGGER_CALL(&::turnkey::base::Logger(), spdlog::level::debug, __VA_ARGS__)
#define TK_LOG_INFO(...) SPDLOG_LOGGER_CALL(&::turnkey::base::Logger(), spdlog::level::info, __VA_ARGS__)
#define TK_LOG_WARN(...) SPDLOG_LOGGER_CALL(&::turnkey::base::Logger(), spdlog::level::warn, __VA_ARGS__)
#define TK_LOG_ERROR(...) SPDLOG_LOGGER_CALL(&::turnkey::base::Logger(), spdlog::level::err, __VA_ARGS__)
