#include "sql/mysql_store.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "base/log.h"
#include "sql/mysql_connection.h"

namespace turnkey::sql {

namespace {

using SteadyClock = std::chrono::steady_clock;

class MysqlDatabase final : public Database {
 public:
  explicit MysqlDatabase(const MysqlStoreOptions& options)
      : options_(options), backoff_(options.reconnect_backoff_initial) {}

  ~MysqlDatabase() override {
    // Precondition of destroying the store: no call is running, so every
    // connection is idle here.
    idle_.clear();
  }

  Dialect dialect() const override { return Dialect::kMysql; }

  base::Status Run(const OpOptions& options, const Op& op) override {
    for (int attempt = 0;; ++attempt) {
      auto conn = Acquire();
      if (!conn) {
        return std::unexpected(conn.error());
      }
      MysqlConnection& c = **conn;
      c.ResetAttempt();
      base::Status status = RunOnce(c, options, op);
      const bool lost = c.lost();
      const bool rolled_back = c.rolled_back();
      const bool commit_sent = c.commit_sent();
      if (lost) {
        Discard(std::move(*conn));
      } else {
        Release(std::move(*conn));
      }
      if (status || (!lost && !rolled_back)) {
        return status;
      }
      // A lost connection is retried once. A deadlock (the server undid the
      // whole transaction, the connection is fine) a few times: under
      // contention, a password change racing several token rotations, the
      // rerun can meet the next one.
      const bool deadlock = rolled_back && !lost;
      if (attempt > 0 && !(deadlock && attempt + 1 < kDeadlockAttempts)) {
        return status;
      }
      if (!SafeToRerun(options, lost, rolled_back, commit_sent)) {
        if (options.kind == OpKind::kWrite && commit_sent) {
          return base::Unavailable(std::string(kCommitOutcomeUnknown));
        }
        return status;
      }
      TK_LOG_DEBUG("mysql: retrying after: {}", status.error().message);
      if (deadlock) {
        // Let the transaction that won finish first: 1, 2, 4, 8 ms.
        std::this_thread::sleep_for(std::chrono::milliseconds(1 << attempt));
      }
    }
  }

  // Attempts of an op the server rolls back for a deadlock (1213).
  static constexpr int kDeadlockAttempts = 5;

 private:
  static base::Status RunOnce(MysqlConnection& conn, const OpOptions& options, const Op& op) {
    if (options.kind != OpKind::kWrite) {
      return op(conn);
    }
    if (auto begun = conn.Begin(); !begun) {
      return begun;
    }
    base::Status status = op(conn);
    if (!status) {
      conn.Rollback();
      return status;
    }
    if (auto committed = conn.Commit(); !committed) {
      conn.Rollback();
      return committed;
    }
    return base::Ok();
  }

  // A connection from the pool: an idle one, else a new one while the pool
  // is not full, else the first one a caller gives back. When the server
  // refuses a new connection while the store holds some ("Too many
  // connections", a per-account limit), callers wait for one of those, in
  // the back-off too; a store that holds none fails at once.
  base::Result<std::unique_ptr<MysqlConnection>> Acquire() {
    std::unique_lock<std::mutex> lock(mutex_);
    const auto deadline = SteadyClock::now() + options_.acquire_timeout;
    for (;;) {
      if (!idle_.empty()) {
        auto conn = std::move(idle_.back());
        idle_.pop_back();
        return conn;
      }
      const auto now = SteadyClock::now();
      const bool may_open = open_ < options_.pool_size;
      if (may_open && now >= next_connect_) {
        auto conn = Connect(lock);
        if (conn || open_ == 0) {
          return conn;
        }
        continue;
      }
      if (may_open && open_ == 0) {
        auto wait = std::chrono::ceil<std::chrono::milliseconds>(next_connect_ - now);
        return base::Unavailable(
            fmt::format("mysql: server unreachable ({}); next connect attempt in {} ms",
                        last_error_, wait.count()));
      }
      if (now >= deadline) {
        return base::MakeError(base::ErrorCode::kResourceExhausted,
                               "mysql: no free connection in time");
      }
      available_.wait_until(lock, may_open ? std::min(deadline, next_connect_) : deadline);
    }
  }

  // Opens one more connection, unlocking `lock` meanwhile; a failure starts
  // or lengthens the back-off.
  base::Result<std::unique_ptr<MysqlConnection>> Connect(std::unique_lock<std::mutex>& lock) {
    ++open_;
    lock.unlock();
    auto conn = MysqlConnection::Connect(options_);
    lock.lock();
    if (!conn) {
      --open_;
      next_connect_ = SteadyClock::now() + backoff_;
      backoff_ = std::min(backoff_ * 2, options_.reconnect_backoff_max);
      if (!down_) {
        TK_LOG_WARN("{}", conn.error().message);
      }
      down_ = true;
      last_error_ = conn.error().message;
      // Waiters decide again: with no connection left they fail now.
      available_.notify_all();
      return conn;
    }
    if (down_) {
      TK_LOG_INFO("mysql: connected again to the server");
    }
    down_ = false;
    backoff_ = options_.reconnect_backoff_initial;
    next_connect_ = {};
    return conn;
  }

  void Release(std::unique_ptr<MysqlConnection> conn) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      idle_.push_back(std::move(conn));
    }
    available_.notify_one();
  }

  // Drops a broken connection and every idle one: when the server went
  // away they are all broken, and each would cost a caller a failed attempt.
  void Discard(std::unique_ptr<MysqlConnection> conn) {
    std::vector<std::unique_ptr<MysqlConnection>> closing;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      closing.swap(idle_);
      open_ -= 1 + static_cast<int>(closing.size());
    }
    available_.notify_all();
    TK_LOG_WARN("mysql: connection dropped ({}); reconnecting", conn->lost_error());
    closing.clear();
    conn.reset();
  }

  const MysqlStoreOptions options_;
  std::mutex mutex_;
  std::condition_variable available_;
  // Guarded by mutex_:
  std::vector<std::unique_ptr<MysqlConnection>> idle_;
  int open_ = 0;  // idle + lent out + being connected
  SteadyClock::time_point next_connect_{};
  std::chrono::milliseconds backoff_;
  bool down_ = false;
  std::string last_error_;
};

}  // namespace

base::Result<std::unique_ptr<MysqlStore>> MysqlStore::Open(const MysqlStoreOptions& options,
                                                           std::span<const Migration> migrations) {
  if (options.host.empty() && options.unix_socket.empty()) {
    return base::InvalidArgument("mysql.host: required");
  }
  if (options.database.empty()) {
    return base::InvalidArgument("mysql.database: required");
  }
  if (options.pool_size < 1 || options.pool_size > 256) {
    return base::InvalidArgument("mysql.pool_size: must be 1-256");
  }
  if (options.reconnect_backoff_initial.count() < 0 ||
      options.reconnect_backoff_max < options.reconnect_backoff_initial) {
    return base::InvalidArgument("mysql reconnect backoff: need 0 <= initial <= max");
  }
  auto db = std::make_unique<MysqlDatabase>(options);
  return std::unique_ptr<MysqlStore>(new MysqlStore(std::move(db), migrations));
}

}  // namespace turnkey::sql
