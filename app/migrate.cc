// `turnkey migrate`: applies the pending schema migrations of the
// configured database (DESIGN.md section 6) and says what it did.
#include <cstdio>

#include "app/commands.h"
#include "app/database_setup.h"
#include "sql/migrations.h"

namespace turnkey::app {

int RunMigrate(const std::string& config_path) {
  std::optional<config::Config> config = LoadCommandConfig(config_path);
  if (!config) {
    return 1;
  }
  const std::string what = DescribeDatabase(*config);
  auto store = OpenDatabase(*config);
  if (!store) {
    std::fprintf(stderr, "turnkey migrate: %s\n", store.error().message.c_str());
    return 1;
  }
  auto before = (*store)->GetSchemaState();
  if (!before) {
    std::fprintf(stderr, "turnkey migrate: %s: %s\n", what.c_str(), before.error().message.c_str());
    return 1;
  }
  std::printf("%s: schema version %d, this turnkey knows %d\n", what.c_str(),
              before->current_version, before->latest_version);
  auto applied = (*store)->Migrate();
  if (!applied) {
    std::fprintf(stderr, "turnkey migrate: %s: %s\n", what.c_str(),
                 applied.error().message.c_str());
    return 1;
  }
  if (*applied == 0) {
    std::printf("%s: up to date, nothing to apply\n", what.c_str());
  } else {
    const sql::Dialect dialect = MakeStoreOptions(*config).driver;
    for (const sql::Migration& migration : sql::EmbeddedMigrations(dialect)) {
      if (migration.version > before->current_version) {
        std::printf("  applied %03d_%.*s\n", migration.version,
                    static_cast<int>(migration.name.size()), migration.name.data());
      }
    }
    std::printf("%s: applied %d migration%s, schema version now %d\n", what.c_str(), *applied,
                *applied == 1 ? "" : "s", before->latest_version);
  }
  if (auto checked = (*store)->CheckSchema(); !checked) {
    std::fprintf(stderr, "turnkey migrate: %s: %s\n", what.c_str(),
                 checked.error().message.c_str());
    return 1;
  }
  return 0;
}

}  // namespace turnkey::app
