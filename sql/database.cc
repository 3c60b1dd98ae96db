#include "sql/database.h"

namespace turnkey::sql {

bool SafeToRerun(const OpOptions& options, bool lost, bool rolled_back, bool commit_sent) {
  if (options.kind == OpKind::kSession || (!lost && !rolled_back)) {
    return false;
  }
  if (options.kind == OpKind::kRead || options.idempotent) {
    return true;
  }
  // A write whose COMMIT never left, or that the server undid itself, has
  // not happened; one whose COMMIT was sent may have.
  return !commit_sent || (rolled_back && !lost);
}

}  // namespace turnkey::sql
