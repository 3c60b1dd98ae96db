// `turnkey user`: account tasks for the operator, run against the configured
// database while the server runs or not (DESIGN.md section 3).
//
// Passwords are read from standard input, never from the command line
// (where `ps` and shell history would keep them): one line, the trailing
// newline dropped; on a terminal it is asked for twice without echo.
#include <termios.h>
#include <unistd.h>

#include <cstdio>
#include <expected>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "app/commands.h"
#include "auth/password_hasher.h"
#include "auth/refresh_token.h"
#include "base/clock.h"
#include "signal/account_rules.h"
#include "signal/api_json.h"

namespace turnkey::app {
namespace {

constexpr const char* kCommand = "turnkey user";

// One line from stdin without its line ending; nullopt at end of input.
std::optional<std::string> ReadLine() {
  std::string line;
  if (!std::getline(std::cin, line)) {
    return std::nullopt;
  }
  if (!line.empty() && line.back() == '\r') {
    line.pop_back();
  }
  return line;
}

std::optional<std::string> PromptHidden(const char* prompt) {
  std::fputs(prompt, stderr);
  std::fflush(stderr);
  termios saved{};
  const bool terminal = tcgetattr(STDIN_FILENO, &saved) == 0;
  if (terminal) {
    termios quiet = saved;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
  }
  std::optional<std::string> line = ReadLine();
  if (terminal) {
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    std::fputc('\n', stderr);
  }
  return line;
}

// The new password, checked by the same rules as the REST API; nullopt
// after printing why not.
std::optional<std::string> ReadNewPassword() {
  std::optional<std::string> password;
  if (isatty(STDIN_FILENO)) {
    password = PromptHidden("New password: ");
    std::optional<std::string> again = PromptHidden("Again: ");
    if (password && again && *password != *again) {
      std::fprintf(stderr, "%s: the two passwords differ\n", kCommand);
      return std::nullopt;
    }
  } else {
    password = ReadLine();
  }
  if (!password) {
    std::fprintf(stderr, "%s: no password on standard input\n", kCommand);
    return std::nullopt;
  }
  if (auto problem = signal::CheckPassword(*password)) {
    std::fprintf(stderr, "%s: %s\n", kCommand, problem->c_str());
    return std::nullopt;
  }
  return password;
}

int Fail(const base::Error& error, const std::string& what) {
  std::fprintf(stderr, "%s: %s%s\n", kCommand, what.empty() ? "" : (what + ": ").c_str(),
               error.message.c_str());
  return 1;
}

// The hash of a new password read from stdin, or the exit code after
// printing why there is none.
std::expected<std::string, int> ReadNewPasswordHash() {
  std::optional<std::string> password = ReadNewPassword();
  if (!password) {
    return std::unexpected(2);
  }
  auto hasher = auth::PasswordHasher::Create();
  auto hash = hasher ? hasher->Hash(*password) : std::unexpected(hasher.error());
  if (!hash) {
    return std::unexpected(Fail(hash.error(), "password hash"));
  }
  return std::move(*hash);
}

void PrintUser(const sql::User& user) {
  // The API's own view of a user (no password hash).
  std::printf("%s\n", signal::UserJson(user).dump(2).c_str());
}

int Add(sql::Store& store, const UserArgs& args) {
  for (const std::optional<std::string>& problem :
       {signal::CheckEmail(args.email), signal::CheckHandle(args.handle),
        args.display_name.empty() ? std::nullopt : signal::CheckDisplayName(args.display_name)}) {
    if (problem) {
      std::fprintf(stderr, "%s: %s\n", kCommand, problem->c_str());
      return 2;
    }
  }
  auto hash = ReadNewPasswordHash();
  if (!hash) {
    return hash.error();
  }
  sql::NewUser user;
  user.id = auth::NewUserId();
  user.email = args.email;
  user.handle = args.handle;
  user.display_name = args.display_name.empty() ? args.handle : args.display_name;
  user.password_hash = std::move(*hash);
  user.now_ms = base::SystemClock::Instance().UnixMillis();
  auto created = store.CreateUser(user);
  if (!created) {
    return Fail(created.error(), "");
  }
  PrintUser(*created);
  return 0;
}

int SetPassword(sql::Store& store, const sql::User& user) {
  auto hash = ReadNewPasswordHash();
  if (!hash) {
    return hash.error();
  }
  const int64_t now = base::SystemClock::Instance().UnixMillis();
  auto revoked = store.ChangePassword(user.id, *hash, now, nullptr);
  if (!revoked) {
    return Fail(revoked.error(), user.id);
  }
  std::printf("password set for %s (%s); %lld refresh token%s revoked\n", user.id.c_str(),
              user.handle.c_str(), static_cast<long long>(*revoked), *revoked == 1 ? "" : "s");
  return 0;
}

int RevokeSessions(sql::Store& store, const sql::User& user) {
  auto revoked = store.RevokeAllRefreshTokens(user.id, base::SystemClock::Instance().UnixMillis());
  if (!revoked) {
    return Fail(revoked.error(), user.id);
  }
  std::printf("%lld refresh token%s of %s (%s) revoked\n", static_cast<long long>(*revoked),
              *revoked == 1 ? "" : "s", user.id.c_str(), user.handle.c_str());
  return 0;
}

}  // namespace

base::Result<sql::User> FindCommandUser(sql::Store& store, const std::string& who) {
  if (who.starts_with('@')) {
    return store.GetUserByHandle(std::string_view(who).substr(1));
  }
  if (who.find('@') != std::string::npos) {
    return store.GetUserByEmail(who);
  }
  if (auth::IsWellFormedUserId(who)) {
    auto user = store.GetUserById(who);
    if (user || user.error().code != base::ErrorCode::kNotFound) {
      return user;
    }
  }
  return store.GetUserByHandle(who);
}

int RunUser(const std::string& config_path, const UserArgs& args) {
  std::unique_ptr<sql::Store> store = OpenCommandDatabase(config_path, kCommand);
  if (store == nullptr) {
    return 1;
  }
  if (args.action == "add") {
    return Add(*store, args);
  }
  auto user = FindCommandUser(*store, args.who);
  if (!user) {
    if (user.error().code == base::ErrorCode::kNotFound) {
      std::fprintf(stderr, "%s: no user with id, email or handle \"%s\"\n", kCommand,
                   args.who.c_str());
      return 1;
    }
    return Fail(user.error(), args.who);
  }
  if (args.action == "show") {
    PrintUser(*user);
    return 0;
  }
  if (args.action == "set-password") {
    return SetPassword(*store, *user);
  }
  return RevokeSessions(*store, *user);
}

}  // namespace turnkey::app
