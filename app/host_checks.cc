#include "app/host_checks.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string_view>
#include <system_error>

#include "app/database_setup.h"
#include "signal/static_files.h"
#include "sql/sqlite_connection.h"

namespace turnkey::app {
namespace {

namespace fs = std::filesystem;

void CheckAddress(std::string_view key, const base::SocketAddress& address,
                  const std::function<bool(const base::SocketAddress&)>& can_bind,
                  HostCheckResult& result) {
  if (address.IsUnspecified() || can_bind(address)) {
    return;
  }
  result.errors.push_back(std::string(key) + ": cannot bind " + address.IpString() +
                          " on this host (not an address of one of its interfaces); name one "
                          "of its addresses, or 0.0.0.0 / \"::\" for all of them");
}

// Why this user cannot write files in state_dir, or nullopt. One that does
// not exist yet is fine when this user can make it (serve does; so does
// systemd's StateDirectory=, before the guide's install step made it anyway):
// its nearest existing parent must be writable.
std::optional<std::string> StateDirProblem(const fs::path& dir) {
  std::error_code error;
  if (!fs::exists(dir, error)) {
    if (error && error != std::errc::no_such_file_or_directory) {
      return "cannot reach " + dir.string() + ": " + error.message();
    }
    fs::path parent = fs::absolute(dir, error).parent_path();
    while (!error && !fs::exists(parent, error) && parent != parent.root_path()) {
      parent = parent.parent_path();
    }
    if (!error && ::access(parent.c_str(), W_OK | X_OK) != 0) {
      const int why = errno;
      return dir.string() + " does not exist and this user cannot create it (" + parent.string() +
             ": " + std::strerror(why) + "); create it for the service user";
    }
    return std::nullopt;
  }
  if (!fs::is_directory(dir, error)) {
    return dir.string() + " is not a directory";
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    const int why = errno;
    return dir.string() + " is not writable by this user (" + std::strerror(why) + ")";
  }
  return std::nullopt;
}

}  // namespace

HostCheckResult CheckHost(const config::Config& config,
                          const std::function<bool(const base::SocketAddress&)>& can_bind) {
  HostCheckResult result;
  if (config.turn.enabled) {
    for (size_t i = 0; i < config.turn.listeners.size(); ++i) {
      CheckAddress("turn.listeners[" + std::to_string(i) + "].address",
                   config.turn.listeners[i].address, can_bind, result);
    }
    if (config.turn.nat_discovery.enabled && config.turn.nat_discovery.alternate_address) {
      CheckAddress("turn.nat_discovery.alternate_address",
                   *config.turn.nat_discovery.alternate_address, can_bind, result);
    }
  }
  if (config.metrics.enabled) {
    CheckAddress("metrics.listen", config.metrics.listen, can_bind, result);
  }
  if (!config.signal.enabled) {
    return result;
  }
  CheckAddress("signal.listen.address", config.signal.listen.address, can_bind, result);
  if (!config.signal.web_root.empty()) {
    if (auto loaded = signal::StaticFiles::Load(config.signal.web_root); !loaded) {
      result.errors.push_back("signal.web_root: " + loaded.error().message);
    }
  }
  // serve writes the unwritten-calls file (and a generated token key) in
  // state_dir.
  if (auto problem = StateDirProblem(config.state_dir)) {
    result.errors.push_back("state_dir: " + *problem);
  }
  const sql::StoreOptions store = MakeStoreOptions(config);
  if (store.driver == sql::Dialect::kSqlite && store.sqlite.path != ":memory:") {
    // A bare file name is in state_dir, which serve (or systemd) creates:
    // nothing to look at before that.
    const fs::path configured(config.database.sqlite.path);
    std::error_code error;
    const bool state_dir_to_come = configured.is_relative() && !configured.has_parent_path() &&
                                   !fs::exists(config.state_dir, error);
    if (std::string problem = state_dir_to_come ? "" : sql::SqlitePathProblem(store.sqlite.path);
        !problem.empty()) {
      result.errors.push_back("database.sqlite.path: " + store.sqlite.path + ": " + problem);
    }
  }
  return result;
}

}  // namespace turnkey::app
