#include "base/log.h"

#include <spdlog/formatter.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>

#include "base/utf8.h"

namespace turnkey::base {

namespace {

spdlog::level::level_enum ToSpd(LogLevel level) {
  switch (level) {
    case LogLevel::kTrace:
      return spdlog::level::trace;
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
    case LogLevel::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}

// How a level is written: its name as log.level says it ("warn", where
// spdlog says "warning"), so that what an operator configures is what the
// lines say, and the syslog priority journald reads from a "<N>" at a line's
// start (sd-daemon(3)), so `journalctl -p warning` finds the warnings.
struct LevelText {
  std::string_view name;
  char priority;
};

LevelText TextOf(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return {"trace", '7'};
    case spdlog::level::debug:
      return {"debug", '7'};
    case spdlog::level::info:
      return {"info", '6'};
    case spdlog::level::warn:
      return {"warn", '4'};
    case spdlog::level::err:
      return {"error", '3'};
    case spdlog::level::critical:
      return {"critical", '2'};  // not used by turnkey
    case spdlog::level::off:
    case spdlog::level::n_levels:
      break;
  }
  return {"off", '2'};
}

std::string_view LevelName(spdlog::level::level_enum level) { return TextOf(level).name; }

void AppendPriority(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
  const char prefix[] = {'<', TextOf(msg.level).priority, '>'};
  dest.append(prefix, prefix + sizeof(prefix));
}

// %< in the text pattern: the "<N>" prefix.
class PriorityFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    AppendPriority(msg, dest);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<PriorityFlag>();
  }
};

// Whether stderr is the journal's stream: systemd sets JOURNAL_STREAM to
// its "device:inode" (systemd.exec(5)); a redirect by hand is not.
bool StderrIsJournal() {
  const char* stream = std::getenv("JOURNAL_STREAM");
  struct stat st {};
  if (stream == nullptr || ::fstat(STDERR_FILENO, &st) != 0) {
    return false;
  }
  unsigned long long device = 0;
  unsigned long long inode = 0;
  if (std::sscanf(stream, "%llu:%llu", &device, &inode) != 2) {
    return false;
  }
  return device == static_cast<unsigned long long>(st.st_dev) &&
         inode == static_cast<unsigned long long>(st.st_ino);
}

// %~ in the text pattern (a flag spdlog leaves free): LevelName, where %l
// would be spdlog's own name.
class LevelNameFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    dest.append(LevelName(msg.level));
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<LevelNameFlag>();
  }
};

void AppendJsonString(spdlog::memory_buf_t& dest, std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  dest.push_back('"');
  for (char c : s) {
    switch (c) {
      case '"':
        dest.append(std::string_view("\\\""));
        break;
      case '\\':
        dest.append(std::string_view("\\\\"));
        break;
      case '\n':
        dest.append(std::string_view("\\n"));
        break;
      case '\r':
        dest.append(std::string_view("\\r"));
        break;
      case '\t':
        dest.append(std::string_view("\\t"));
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          const char esc[] = {'\\', 'u', '0', '0', kHex[(c >> 4) & 0xf], kHex[c & 0xf]};
          dest.append(esc, esc + sizeof(esc));
        } else {
          dest.push_back(c);
        }
    }
  }
  dest.push_back('"');
}

// The message for the text format (the pattern's %*): a line break or
// another control character (tab aside) is written as an escape, so that
// every record is one line and a name a client chose cannot start a line
// that looks like a record of its own.
class EscapedMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    static constexpr char kHex[] = "0123456789abcdef";
    for (char c : std::string_view(msg.payload.data(), msg.payload.size())) {
      const auto byte = static_cast<unsigned char>(c);
      if (c == '\n') {
        dest.append(std::string_view("\\n"));
      } else if (c == '\r') {
        dest.append(std::string_view("\\r"));
      } else if ((byte < 0x20 && c != '\t') || byte == 0x7f) {
        const char esc[] = {'\\', 'x', kHex[byte >> 4], kHex[byte & 0xf]};
        dest.append(esc, esc + sizeof(esc));
      } else {
        dest.push_back(c);
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<EscapedMessageFlag>();
  }
};

std::unique_ptr<spdlog::formatter> MakeTextFormatter(bool priority) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>(spdlog::pattern_time_type::utc);
  formatter->add_flag<EscapedMessageFlag>('*')
      .add_flag<LevelNameFlag>('~')
      .add_flag<PriorityFlag>('<')
      .set_pattern(priority ? "%<%Y-%m-%dT%H:%M:%S.%e%z %~ %*" : "%Y-%m-%dT%H:%M:%S.%e%z %~ %*");
  return formatter;
}

// One JSON object per line: {"ts":"...","level":"info","msg":"..."}.
class JsonFormatter final : public spdlog::formatter {
 public:
  explicit JsonFormatter(bool priority) : priority_(priority) {}

  void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override {
    if (priority_) {
      AppendPriority(msg, dest);
    }
    auto secs = std::chrono::time_point_cast<std::chrono::seconds>(msg.time);
    auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(msg.time - secs).count();
    std::time_t t = std::chrono::system_clock::to_time_t(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char ts[40];
    size_t n = std::strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    fmt::format_to(std::back_inserter(dest),
                   "{{\"ts\":\"{}.{:03}Z\",\"level\":", std::string_view(ts, n), millis);
    AppendJsonString(dest, LevelName(msg.level));
    dest.append(std::string_view(",\"msg\":"));
    // A JSON text is UTF-8 (RFC 8259 section 8.1), and messages may carry
    // outside bytes (a config key named in a reload error, say).
    const std::string_view payload(msg.payload.data(), msg.payload.size());
    if (IsValidUtf8(payload)) {
      AppendJsonString(dest, payload);
    } else {
      AppendJsonString(dest, ToValidUtf8(payload));
    }
    dest.append(std::string_view("}\n"));
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>(priority_);
  }

 private:
  bool priority_;
};

std::mutex g_mu;

std::shared_ptr<spdlog::logger> MakeLogger() {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("turnkey", sink);
  logger->set_formatter(MakeTextFormatter(StderrIsJournal()));
  logger->set_level(spdlog::level::info);
  logger->flush_on(spdlog::level::trace);
  return logger;
}

spdlog::logger& Instance() {
  static std::shared_ptr<spdlog::logger> logger = MakeLogger();
  return *logger;
}

}  // namespace

Result<LogLevel> ParseLogLevel(std::string_view name) {
  if (name == "trace") return LogLevel::kTrace;
  if (name == "debug") return LogLevel::kDebug;
  if (name == "info") return LogLevel::kInfo;
  if (name == "warn" || name == "warning") return LogLevel::kWarn;
  if (name == "error") return LogLevel::kError;
  if (name == "off") return LogLevel::kOff;
  return InvalidArgument("expected one of trace, debug, info, warn, error, off");
}

Result<LogFormat> ParseLogFormat(std::string_view name) {
  if (name == "text") return LogFormat::kText;
  if (name == "json") return LogFormat::kJson;
  return InvalidArgument("expected text or json");
}

void InitLogging(LogLevel level, LogFormat format) {
  std::lock_guard lock(g_mu);
  spdlog::logger& logger = Instance();
  const bool priority = StderrIsJournal();
  if (format == LogFormat::kJson) {
    logger.set_formatter(std::make_unique<JsonFormatter>(priority));
  } else {
    logger.set_formatter(MakeTextFormatter(priority));
  }
  logger.set_level(ToSpd(level));
}

void SetLogLevel(LogLevel level) { Instance().set_level(ToSpd(level)); }

spdlog::logger& Logger() { return Instance(); }

bool LogLimiter::Allow(uint64_t* held_back, std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (logged_ && now - last_ < period_) {
    ++held_;
    return false;
  }
  logged_ = true;
  last_ = now;
  *held_back = held_;
  held_ = 0;
  return true;
}

std::string HeldBack(uint64_t held_back) {
  return held_back == 0 ? std::string()
                        : fmt::format(" ({} more held back since the last such line)", held_back);
}

}  // namespace turnkey::base
