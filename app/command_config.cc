// Loading the config for the one-shot commands (app/commands.h).
#include <cstdio>
#include <vector>

#include "app/commands.h"
#include "app/database_setup.h"
#include "base/log.h"
#include "config/loader.h"

namespace turnkey::app {

std::optional<config::Config> LoadCommandConfig(const std::string& config_path) {
  std::vector<std::string> warnings;
  auto loaded = config::LoadConfigFile(config_path, &warnings);
  if (!loaded) {
    std::fprintf(stderr, "%s\n", loaded.error().message.c_str());
    return std::nullopt;
  }
  for (const std::string& warning : warnings) {
    std::fprintf(stderr, "%s\n", warning.c_str());
  }
  // What the command logs (migrate as ExecStartPre, into the journal) in
  // the config's format, as serve does.
  base::InitLogging(loaded->log.level, loaded->log.format);
  return std::move(*loaded);
}

std::unique_ptr<sql::Store> OpenCommandDatabase(const std::string& config_path,
                                                const char* command) {
  std::optional<config::Config> config = LoadCommandConfig(config_path);
  if (!config) {
    return nullptr;
  }
  auto store = OpenDatabase(*config);
  base::Status ready = store ? PrepareSchemaForServe(**store, *config)
                             : base::Status(std::unexpected(store.error()));
  if (!ready) {
    // Both name the database already (DescribeDatabase).
    std::fprintf(stderr, "%s: %s\n", command, ready.error().message.c_str());
    return nullptr;
  }
  return std::move(*store);
}

}  // namespace turnkey::app
