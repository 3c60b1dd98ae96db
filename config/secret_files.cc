#include "config/secret_files.h"

#include <fmt/format.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string_view>
#include <system_error>
#include <vector>

namespace turnkey::config {
namespace {

// A secret file is a line or a short list; anything bigger is the wrong file.
constexpr std::uintmax_t kMaxSecretFileBytes = 64 * 1024;

// HS256 keys need 256 bits (reference/security.md, RFC 7518 section 3.2).
constexpr size_t kMinJwtSecretBytes = 32;

void Resolve(std::string& path, const std::filesystem::path& base) {
  if (path.empty()) {
    return;
  }
  std::filesystem::path p(path);
  if (p.is_relative()) {
    path = (base / p).lexically_normal().string();
  }
}

std::string_view Trim(std::string_view text) {
  constexpr std::string_view kSpace = " \t\r\n";
  const size_t first = text.find_first_not_of(kSpace);
  if (first == std::string_view::npos) {
    return {};
  }
  const size_t last = text.find_last_not_of(kSpace);
  return text.substr(first, last - first + 1);
}

// Reads `path` whole, or reports at `key` and returns nullopt.
std::optional<std::string> ReadSmallFile(const std::string& path, const std::string& key,
                                         Diagnostics& diag) {
  const std::string prefix = "cannot read \"" + path + "\": ";
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec) {
    diag.ErrorAt(key, prefix + ec.message());
    return std::nullopt;
  }
  if (!std::filesystem::is_regular_file(status)) {
    diag.ErrorAt(key, prefix + "not a regular file");
    return std::nullopt;
  }
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  if (ec || size > kMaxSecretFileBytes) {
    diag.ErrorAt(key, prefix + (ec ? ec.message() : std::string("larger than 64 KiB")));
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    diag.ErrorAt(key, prefix + std::strerror(errno));
    return std::nullopt;
  }
  std::string contents{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  if (in.bad()) {
    diag.ErrorAt(key, prefix + "I/O error");
    return std::nullopt;
  }
  return contents;
}

// This process runs with group `gid` (effective or supplementary).
bool ProcessInGroup(gid_t gid) {
  if (gid == ::getegid()) {
    return true;
  }
  const int count = ::getgroups(0, nullptr);
  if (count <= 0) {
    return false;
  }
  std::vector<gid_t> groups(static_cast<size_t>(count));
  const int got = ::getgroups(count, groups.data());
  return got > 0 && std::find(groups.begin(), groups.begin() + got, gid) != groups.begin() + got;
}

std::string GroupName(gid_t gid) {
  std::vector<char> buffer(4096);
  struct group entry {};
  struct group* found = nullptr;
  if (::getgrgid_r(gid, &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr) {
    return found->gr_name;
  }
  return std::to_string(gid);
}

// "read", "change" or "read and change" for the rwx bits in `bits`.
std::string_view Access(mode_t bits, mode_t read, mode_t write) {
  if ((bits & read) != 0 && (bits & write) != 0) {
    return "read and change";
  }
  return (bits & read) != 0 ? "read" : "change";
}

void CheckMode(const std::string& path, const std::string& key, Diagnostics& diag) {
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return;
  }
  const std::string mode = fmt::format("{:04o}", st.st_mode & 07777);
  if ((st.st_mode & (S_IROTH | S_IWOTH)) != 0) {
    diag.WarningAt(key, fmt::format("\"{}\" has mode {}: any user can {} it (chmod o-rwx)", path,
                                    mode, Access(st.st_mode, S_IROTH, S_IWOTH)));
  } else if ((st.st_mode & (S_IRGRP | S_IWGRP)) != 0 && !ProcessInGroup(st.st_gid)) {
    diag.WarningAt(
        key, fmt::format("\"{}\" has mode {}: group {} can {} it, and turnkey does not "
                         "run in that group (chmod g-rwx, or chgrp to turnkey's group)",
                         path, mode, GroupName(st.st_gid), Access(st.st_mode, S_IRGRP, S_IWGRP)));
  }
}

// The first line without its line ending. Inner spaces are kept: they may
// be part of a password.
std::string FirstLine(std::string_view contents) {
  std::string_view line = contents.substr(0, contents.find('\n'));
  if (!line.empty() && line.back() == '\r') {
    line.remove_suffix(1);
  }
  return std::string(line);
}

// A TURN-only node (signal off) uses no token secret, database or Redis:
// their files, often left out on such a host that shares its config with the
// signaling ones, are not required there. A config with neither role (one
// kept for the database commands) still needs them.
bool UsesSignalSecrets(const Config& cfg) { return cfg.signal.enabled || !cfg.turn.enabled; }

}  // namespace

void ResolvePaths(Config& cfg, const std::string& base_dir) {
  if (base_dir.empty()) {
    return;
  }
  const std::filesystem::path base(base_dir);
  Resolve(cfg.state_dir, base);
  Resolve(cfg.tls.certificate, base);
  Resolve(cfg.tls.private_key, base);
  Resolve(cfg.turn.auth.secrets_file, base);
  Resolve(cfg.signal.jwt.secret_file, base);
  Resolve(cfg.signal.web_root, base);
  Resolve(cfg.database.mysql.password_file, base);
  Resolve(cfg.database.mysql.tls_ca_file, base);
  Resolve(cfg.cluster.redis.password_file, base);
}

void CheckSecretFileModes(const Config& cfg, const std::string& config_path, Diagnostics& diag) {
  const AuthOptions& auth = cfg.turn.auth;
  if (!config_path.empty()) {
    // The YAML file itself is a secret file when secrets are written in it.
    if (auth.secrets_file.empty() && !auth.secrets.empty()) {
      CheckMode(config_path, "turn.auth.secrets", diag);
    } else if (!auth.static_users.empty()) {
      CheckMode(config_path, "turn.auth.static_users", diag);
    }
  }
  CheckMode(auth.secrets_file, "turn.auth.secrets_file", diag);
  CheckMode(cfg.signal.jwt.secret_file, "signal.jwt.secret_file", diag);
  if (cfg.database.driver == DatabaseDriver::kMysql) {
    CheckMode(cfg.database.mysql.password_file, "database.mysql.password_file", diag);
  }
  if (cfg.cluster.enabled) {
    CheckMode(cfg.cluster.redis.password_file, "cluster.redis.password_file", diag);
  }
  CheckMode(cfg.tls.private_key, "tls.private_key", diag);
}

void ReadSecretFiles(Config& cfg, Diagnostics& diag) {
  AuthOptions& auth = cfg.turn.auth;
  if (!auth.secrets_file.empty()) {
    const std::string key = "turn.auth.secrets_file";
    if (!auth.secrets.empty()) {
      // Two sources would make "the first secret mints" ambiguous.
      diag.ErrorAt(key, "set either turn.auth.secrets or turn.auth.secrets_file, not both");
    } else if (std::optional<std::string> contents = ReadSmallFile(auth.secrets_file, key, diag)) {
      std::string_view rest = *contents;
      while (!rest.empty()) {
        const size_t end = rest.find('\n');
        std::string_view line = Trim(rest.substr(0, end));
        rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
        if (line.empty() || line.front() == '#') {
          continue;
        }
        auth.secrets.emplace_back(line);
      }
      if (auth.secrets.empty()) {
        diag.ErrorAt(key, "no secrets in \"" + auth.secrets_file + "\"");
      }
    }
  }

  // On a TURN-only node the signaling side's files are read when they can
  // be (the database commands run with the same config), and what is wrong
  // with them is not this node's problem: reported nowhere.
  Diagnostics unused("");
  Diagnostics& signal_diag = UsesSignalSecrets(cfg) ? diag : unused;
  JwtOptions& jwt = cfg.signal.jwt;
  if (!jwt.secret_file.empty()) {
    const std::string key = "signal.jwt.secret_file";
    if (std::optional<std::string> contents = ReadSmallFile(jwt.secret_file, key, signal_diag)) {
      jwt.secret = FirstLine(*contents);
      if (jwt.secret.size() < kMinJwtSecretBytes) {
        jwt.secret.clear();
        signal_diag.ErrorAt(key, "the secret in \"" + jwt.secret_file + "\" is shorter than " +
                                     std::to_string(kMinJwtSecretBytes) + " bytes");
      }
    }
  }

  MysqlOptions& mysql = cfg.database.mysql;
  if (cfg.database.driver == DatabaseDriver::kMysql && !mysql.password_file.empty()) {
    const std::string key = "database.mysql.password_file";
    if (std::optional<std::string> contents =
            ReadSmallFile(mysql.password_file, key, signal_diag)) {
      mysql.password = FirstLine(*contents);
      if (mysql.password.empty()) {
        signal_diag.ErrorAt(key,
                            "\"" + mysql.password_file + "\" holds no password on its first line");
      }
    }
  }

  ClusterRedisOptions& redis = cfg.cluster.redis;
  if (cfg.cluster.enabled && !redis.password_file.empty()) {
    const std::string key = "cluster.redis.password_file";
    if (std::optional<std::string> contents =
            ReadSmallFile(redis.password_file, key, signal_diag)) {
      redis.password = FirstLine(*contents);
      if (redis.password.empty()) {
        signal_diag.ErrorAt(key,
                            "\"" + redis.password_file + "\" holds no password on its first line");
      }
    }
  }
}

}  // namespace turnkey::config
