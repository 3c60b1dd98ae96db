#include "sql/store_factory.h"

#include "sql/mysql_store.h"

namespace turnkey::sql {

base::Result<std::unique_ptr<Store>> OpenStore(const StoreOptions& options) {
  if (options.driver == Dialect::kMysql) {
    auto store = MysqlStore::Open(options.mysql);
    if (!store) {
      return std::unexpected(store.error());
    }
    (*store)->set_cluster(options.cluster);
    return std::unique_ptr<Store>(std::move(*store));
  }
  auto store = SqliteStore::Open(options.sqlite);
  if (!store) {
    return std::unexpected(store.error());
  }
  (*store)->set_cluster(options.cluster);
  return std::unique_ptr<Store>(std::move(*store));
}

}  // namespace turnkey::sql
