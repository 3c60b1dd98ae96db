// The Store suite on MariaDB (a fresh database per test on the server that
// ctest starts with tests/sql/mariadb_server.sh; no server = failures).
#include "tests/sql/store_test_suite.h"
#include "tests/sql/test_backends.h"

namespace turnkey::sql::testing {

INSTANTIATE_TYPED_TEST_SUITE_P(Mysql, StoreTest, MysqlBackend);

}  // namespace turnkey::sql::testing
