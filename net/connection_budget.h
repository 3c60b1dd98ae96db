// ConnectionBudget: how many accepted TCP/TLS connections a group of stream
// listeners may hold, in all and per client (SocketAddress::ClientBlock: an
// IPv4 address or an IPv6 /64).
//
// Every connection holds a file descriptor and some memory until it closes.
// Without a bound, one client could open connections until the process runs
// out of descriptors, after which no relay socket, database connection or
// other client's connection can be opened. A listener given a budget
// (StreamListenerOptions::budget) takes a place in it for each connection it
// accepts, and closes the connection at once when there is none; the place
// is given back when the connection goes.
//
// Budgets nest: a budget with a parent takes a place in the parent too, so
// the signaling and the TURN listeners can each have their own per-client
// limit under one process-wide total (ProcessConnectionBudget). Clients in
// `exempt` (trusted proxies, which carry many clients' connections) have no
// per-client limit, nor, with `exempt_loopback`, have clients on this host;
// they still count towards the total.
//
// Thread-safe: the relay workers' listeners and the signaling loop's share
// the process-wide budget. Accepting is not a hot path (a child budget's lock,
// then its parent's, each way).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/address.h"
#include "base/cidr.h"

namespace turnkey::net {

struct ConnectionBudgetOptions {
  // Connections held at once, in all. 0 = no limit.
  size_t max_total = 0;
  // Connections held at once from one client. 0 = no limit.
  size_t max_per_client = 0;
  // Clients with no per-client limit.
  std::vector<base::Cidr> exempt;
  // Loopback clients (this host: an operator's own tools and load tests)
  // have no per-client limit either.
  bool exempt_loopback = false;
};

class ConnectionBudget {
 public:
  explicit ConnectionBudget(ConnectionBudgetOptions options,
                            std::shared_ptr<ConnectionBudget> parent = nullptr);
  ConnectionBudget(const ConnectionBudget&) = delete;
  ConnectionBudget& operator=(const ConnectionBudget&) = delete;

  enum class Verdict { kTaken, kTotalFull, kClientFull };
  // Takes a place for a connection from `peer` (here and in the parent), or
  // says which limit refused it (the first one reached, parent last).
  Verdict TryTake(const base::SocketAddress& peer);
  // Gives back a place TryTake gave `peer`.
  void Give(const base::SocketAddress& peer);

  size_t max_total() const { return options_.max_total; }  // fixed at construction
  size_t held() const;
  size_t clients() const;
  uint64_t refused() const;

 private:
  bool Exempt(const base::SocketAddress& peer) const;  // mutex_ held

  const std::shared_ptr<ConnectionBudget> parent_;
  mutable std::mutex mutex_;
  ConnectionBudgetOptions options_;
  size_t held_ = 0;
  uint64_t refused_ = 0;
  // Places held per client that has a per-client limit; entries at zero are
  // erased, so the table holds only clients with open connections.
  std::unordered_map<std::string, size_t> per_client_;
};

// The process-wide budget: every listener's connections under the soft
// RLIMIT_NOFILE less a reserve (a quarter of it, at least 64) kept for relay
// sockets, database connections, files and the listeners themselves. Made on
// first use; RaiseFileLimit() first, so it sees the raised limit.
std::shared_ptr<ConnectionBudget> ProcessConnectionBudget();

// Raises the soft RLIMIT_NOFILE to the hard limit, as a server that holds a
// descriptor per connection should (the soft default of 1024 is for
// interactive programs). Returns the soft limit in force afterwards.
size_t RaiseFileLimit();

}  // namespace turnkey::net
