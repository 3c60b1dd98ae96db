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

// Why this user cannot create and write files in `dir`, or nullopt. A
// directory that does not exist yet is fine when `made_by_serve` (state_dir:
// serve, or systemd's StateDirectory=, makes it at the start).
std::optional<std::string> DirectoryProblem(const fs::path& dir, bool made_by_serve) {
  std::error_code error;
  if (!fs::exists(dir, error)) {
    if (error && error != std::errc::no_such_file_or_directory) {
      return "cannot reach directory " + dir.string() + ": " + error.message();
    }
    if (made_by_serve) {
      return std::nullopt;
    }
    return "directory " + dir.string() + " does not exist";
  }
  if (!fs::is_directory(dir, error)) {
    return dir.string() + " is not a directory";
  }
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    const int why = errno;
    return "directory " + dir.string() + " is not writable by this user (" + std::strerror(why) +
           ")";
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
  if (auto problem = DirectoryProblem(config.state_dir, true)) {
    result.errors.push_back("state_dir: " + *problem);
  }
  const sql::StoreOptions store = MakeStoreOptions(config);
  if (store.driver == sql::Dialect::kSqlite && store.sqlite.path != ":memory:") {
    const fs::path path(store.sqlite.path);
    const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
    // A bare file name is in state_dir, which serve (or systemd) creates.
    const fs::path configured(config.database.sqlite.path);
    const bool in_state_dir = configured.is_relative() && !configured.has_parent_path();
    // SQLite keeps -wal and -shm files next to the database.
    std::error_code error;
    if (auto problem = DirectoryProblem(dir, in_state_dir)) {
      result.errors.push_back("database.sqlite.path: " + *problem);
    } else if (fs::is_directory(path, error)) {
      result.errors.push_back("database.sqlite.path: " + path.string() + " is a directory");
    } else if (fs::exists(path, error) && ::access(path.c_str(), R_OK | W_OK) != 0) {
      const int why = errno;
      result.errors.push_back("database.sqlite.path: " + path.string() +
                              " is not readable and writable by this user (" + std::strerror(why) +
                              ")");
    }
  }
  return result;
}

}  // namespace turnkey::app
