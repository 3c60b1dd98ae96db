#include "base/log.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "base/utf8.h"

namespace turnkey::base {
namespace {

TEST(LogTest, ParsesLevels) {
  EXPECT_EQ(ParseLogLevel("trace").value(), LogLevel::kTrace);
  EXPECT_EQ(ParseLogLevel("debug").value(), LogLevel::kDebug);
  EXPECT_EQ(ParseLogLevel("info").value(), LogLevel::kInfo);
  EXPECT_EQ(ParseLogLevel("warn").value(), LogLevel::kWarn);
  EXPECT_EQ(ParseLogLevel("warning").value(), LogLevel::kWarn);
  EXPECT_EQ(ParseLogLevel("error").value(), LogLevel::kError);
  EXPECT_EQ(ParseLogLevel("off").value(), LogLevel::kOff);
}

TEST(LogTest, RejectsUnknownLevels) {
  for (const char* name : {"", "INFO", "Info", "verbose", "info ", "fatal", "critical"}) {
    auto r = ParseLogLevel(name);
    ASSERT_FALSE(r.has_value()) << name;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
    EXPECT_FALSE(r.error().message.empty());
  }
}

TEST(LogTest, ParsesFormats) {
  EXPECT_EQ(ParseLogFormat("text").value(), LogFormat::kText);
  EXPECT_EQ(ParseLogFormat("json").value(), LogFormat::kJson);
  for (const char* name : {"", "JSON", "yaml", "text\n"}) {
    auto r = ParseLogFormat(name);
    ASSERT_FALSE(r.has_value()) << name;
    EXPECT_EQ(r.error().code, ErrorCode::kInvalidArgument);
  }
}

TEST(LogTest, JsonLinesEscapeAndFilterByLevel) {
  InitLogging(LogLevel::kInfo, LogFormat::kJson);
  testing::internal::CaptureStderr();
  TK_LOG_DEBUG("hidden {}", 1);
  TK_LOG_WARN("say \"{}\"\n\t{}", "hi", std::string("a\x01z"));
  Logger().flush();
  const std::string out = testing::internal::GetCapturedStderr();
  EXPECT_EQ(out.find("hidden"), std::string::npos);
  EXPECT_NE(out.find("\"level\":\"warn\""), std::string::npos) << out;
  EXPECT_NE(out.find("\"msg\":\"say \\\"hi\\\"\\n\\ta\\u0001z\"}"), std::string::npos) << out;
  EXPECT_NE(out.find("{\"ts\":\""), std::string::npos) << out;
  // Exactly one line.
  EXPECT_EQ(out.find('\n'), out.size() - 1) << out;
  InitLogging(LogLevel::kInfo, LogFormat::kText);
}

TEST(LogTest, JsonLinesStayValidUtf8) {
  // Log messages carry bytes from outside (a config key on a reload, an
  // OpenSSL error): a line with a stray byte would not be JSON at all
  // (RFC 8259 section 8.1), so ill-formed sequences become U+FFFD.
  InitLogging(LogLevel::kInfo, LogFormat::kJson);
  testing::internal::CaptureStderr();
  TK_LOG_ERROR("bad key {}: caf\xc3\xa9", std::string("k\xff\xfez\xe2\x82"));
  Logger().flush();
  const std::string out = testing::internal::GetCapturedStderr();
  EXPECT_TRUE(IsValidUtf8(out)) << out;
  EXPECT_NE(out.find("\"msg\":\"bad key k\xef\xbf\xbd\xef\xbf\xbdz\xef\xbf\xbd: caf\xc3\xa9\"}"),
            std::string::npos)
      << out;
  InitLogging(LogLevel::kInfo, LogFormat::kText);
}

TEST(LogTest, TextLinesAreOneLinePerMessage) {
  // The operator guide promises one line per event: a message holding a
  // line break (a reload refused for two reasons, a client-chosen name at
  // debug) must not start a second line that looks like a record of its own.
  InitLogging(LogLevel::kInfo, LogFormat::kText);
  testing::internal::CaptureStderr();
  TK_LOG_ERROR("reload: a.yaml:1: x: unknown key\na.yaml:2: y: unknown key{}", "\r\x1b[31m\tz");
  Logger().flush();
  const std::string out = testing::internal::GetCapturedStderr();
  EXPECT_EQ(out.find('\n'), out.size() - 1) << out;
  EXPECT_NE(out.find(" error reload: a.yaml:1: x: unknown key\\na.yaml:2: y: unknown key"
                     "\\r\\x1b[31m\tz\n"),
            std::string::npos)
      << out;
}

TEST(LogTest, TextFormatAndSetLevel) {
  InitLogging(LogLevel::kWarn, LogFormat::kText);
  testing::internal::CaptureStderr();
  TK_LOG_INFO("quiet");
  SetLogLevel(LogLevel::kDebug);
  TK_LOG_DEBUG("loud {}", 42);
  SetLogLevel(LogLevel::kOff);
  TK_LOG_ERROR("off");
  Logger().flush();
  const std::string out = testing::internal::GetCapturedStderr();
  EXPECT_EQ(out.find("quiet"), std::string::npos);
  EXPECT_EQ(out.find("off"), std::string::npos);
  EXPECT_NE(out.find("debug loud 42"), std::string::npos) << out;
  InitLogging(LogLevel::kInfo, LogFormat::kText);
}

TEST(LogTest, LinesNameLevelsAsTheConfigDoes) {
  // log.level is trace, debug, info, warn or error; a line says the same
  // word, in either format, so that a filter written from the config (or
  // from the operator guide) finds it.
  for (LogFormat format : {LogFormat::kText, LogFormat::kJson}) {
    InitLogging(LogLevel::kTrace, format);
    testing::internal::CaptureStderr();
    TK_LOG_TRACE("t");
    TK_LOG_DEBUG("d");
    TK_LOG_INFO("i");
    TK_LOG_WARN("w");
    TK_LOG_ERROR("e");
    Logger().flush();
    const std::string out = testing::internal::GetCapturedStderr();
    const bool json = format == LogFormat::kJson;
    for (const char* level : {"trace", "debug", "info", "warn", "error"}) {
      const std::string expected =
          json ? "\"level\":\"" + std::string(level) + "\"" : "00 " + std::string(level) + " ";
      EXPECT_NE(out.find(expected), std::string::npos) << expected << " in\n" << out;
    }
    EXPECT_EQ(out.find("warning"), std::string::npos) << out;
  }
  InitLogging(LogLevel::kInfo, LogFormat::kText);
}

// Under systemd, stderr is the journal's stream (JOURNAL_STREAM names it):
// each line starts with its syslog priority, which journald takes off and
// keeps, so `journalctl -p warning` finds the warnings. Anywhere else, no
// prefix.
TEST(LogTest, LinesToTheJournalCarryTheirPriority) {
  for (LogFormat format : {LogFormat::kText, LogFormat::kJson}) {
    testing::internal::CaptureStderr();  // fd 2 is now a file of gtest's
    struct stat st {};
    ASSERT_EQ(::fstat(STDERR_FILENO, &st), 0);
    const std::string stream = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
    ::setenv("JOURNAL_STREAM", stream.c_str(), 1);
    InitLogging(LogLevel::kDebug, format);
    TK_LOG_DEBUG("d");
    TK_LOG_INFO("i");
    TK_LOG_WARN("w");
    TK_LOG_ERROR("e");
    ::setenv("JOURNAL_STREAM", "1:2", 1);  // another stream: not the journal
    InitLogging(LogLevel::kInfo, format);
    TK_LOG_WARN("plain");
    ::unsetenv("JOURNAL_STREAM");
    InitLogging(LogLevel::kInfo, LogFormat::kText);
    const std::string out = testing::internal::GetCapturedStderr();
    std::vector<std::string> lines;
    for (size_t start = 0, end; (end = out.find('\n', start)) != std::string::npos;
         start = end + 1) {
      lines.push_back(out.substr(start, end - start));
    }
    ASSERT_EQ(lines.size(), 5u) << out;
    EXPECT_TRUE(lines[0].starts_with("<7>")) << lines[0];
    EXPECT_TRUE(lines[1].starts_with("<6>")) << lines[1];
    EXPECT_TRUE(lines[2].starts_with("<4>")) << lines[2];
    EXPECT_TRUE(lines[3].starts_with("<3>")) << lines[3];
    EXPECT_FALSE(lines[4].starts_with("<")) << lines[4];
    if (format == LogFormat::kJson) {
      EXPECT_TRUE(lines[2].starts_with("<4>{\"ts\":")) << lines[2];
    }
  }
}

TEST(LogLimiterTest, OneLinePerPeriodCountingWhatItHeldBack) {
  LogLimiter limiter(std::chrono::seconds(10));
  const auto start = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  uint64_t held = 99;
  EXPECT_TRUE(limiter.Allow(&held, start));
  EXPECT_EQ(held, 0u);
  EXPECT_EQ(HeldBack(held), "");
  for (int i = 1; i <= 5; ++i) {
    EXPECT_FALSE(limiter.Allow(&held, start + std::chrono::seconds(i)));
  }
  // The next line, a period after the last one written, says how many were
  // held back meanwhile.
  EXPECT_TRUE(limiter.Allow(&held, start + std::chrono::seconds(10)));
  EXPECT_EQ(held, 5u);
  EXPECT_FALSE(limiter.Allow(&held, start + std::chrono::seconds(19)));
  EXPECT_TRUE(limiter.Allow(&held, start + std::chrono::seconds(20)));
  EXPECT_EQ(held, 1u);
  LogLimiter every_time(std::chrono::steady_clock::duration::zero());
  EXPECT_TRUE(every_time.Allow(&held));
  EXPECT_TRUE(every_time.Allow(&held));
  EXPECT_EQ(held, 0u);
  EXPECT_EQ(HeldBack(5), " (5 more held back since the last such line)");
}

}  // namespace
}  // namespace turnkey::base
