// Loading the config for the one-shot commands (app/commands.h).
#include <cstdio>
#include <vector>

#include "app/commands.h"
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
  return std::move(*loaded);
}

}  // namespace turnkey::app
