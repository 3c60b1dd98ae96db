// The Store suite on SQLite (a fresh file per test).
#include "tests/sql/store_test_suite.h"
#include "tests/sql/test_backends.h"

namespace turnkey::sql::testing {

INSTANTIATE_TYPED_TEST_SUITE_P(Sqlite, StoreTest, SqliteBackend);

}  // namespace turnkey::sql::testing
