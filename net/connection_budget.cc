#include "net/connection_budget.h"

#include <sys/resource.h>

#include <algorithm>
#include <limits>
#include <utility>

namespace turnkey::net {

ConnectionBudget::ConnectionBudget(ConnectionBudgetOptions options,
                                   std::shared_ptr<ConnectionBudget> parent)
    : parent_(std::move(parent)), options_(std::move(options)) {}

bool ConnectionBudget::Exempt(const base::SocketAddress& peer) const {
  if (options_.exempt_loopback && peer.IsLoopback()) {
    return true;
  }
  return std::any_of(options_.exempt.begin(), options_.exempt.end(),
                     [&](const base::Cidr& cidr) { return base::CidrContains(cidr, peer); });
}

ConnectionBudget::Verdict ConnectionBudget::TryTake(const base::SocketAddress& peer) {
  // A child holds its lock while it asks its parent, never the other way
  // round, so the two cannot deadlock and neither can overshoot its limits.
  std::lock_guard lock(mutex_);
  if (options_.max_total > 0 && held_ >= options_.max_total) {
    ++refused_;
    return Verdict::kTotalFull;
  }
  std::string client;
  if (options_.max_per_client > 0 && !Exempt(peer)) {
    client = peer.ClientBlock();
    auto it = per_client_.find(client);
    if (it != per_client_.end() && it->second >= options_.max_per_client) {
      ++refused_;
      return Verdict::kClientFull;
    }
  }
  if (parent_ != nullptr) {
    if (const Verdict parent = parent_->TryTake(peer); parent != Verdict::kTaken) {
      ++refused_;
      return parent;
    }
  }
  ++held_;
  if (!client.empty()) {
    ++per_client_[client];
  }
  return Verdict::kTaken;
}

void ConnectionBudget::Give(const base::SocketAddress& peer) {
  {
    std::lock_guard lock(mutex_);
    if (held_ > 0) {
      --held_;
    }
    // The exempt list never changes, so `peer` was counted exactly when it
    // is not exempt now.
    if (!per_client_.empty() && !Exempt(peer)) {
      auto it = per_client_.find(peer.ClientBlock());
      if (it != per_client_.end() && --it->second == 0) {
        per_client_.erase(it);
      }
    }
  }
  if (parent_ != nullptr) {
    parent_->Give(peer);
  }
}

size_t ConnectionBudget::held() const {
  std::lock_guard lock(mutex_);
  return held_;
}

size_t ConnectionBudget::clients() const {
  std::lock_guard lock(mutex_);
  return per_client_.size();
}

uint64_t ConnectionBudget::refused() const {
  std::lock_guard lock(mutex_);
  return refused_;
}

size_t RaiseFileLimit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
    return 1024;
  }
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) {
      limit = raised;
    }
  }
  if (limit.rlim_cur == RLIM_INFINITY) {
    return std::numeric_limits<size_t>::max();
  }
  return static_cast<size_t>(limit.rlim_cur);
}

std::shared_ptr<ConnectionBudget> ProcessConnectionBudget() {
  static const std::shared_ptr<ConnectionBudget> budget = [] {
    rlimit limit{};
    size_t files = 1024;
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY) {
      files = static_cast<size_t>(limit.rlim_cur);
    } else if (limit.rlim_cur == RLIM_INFINITY) {
      files = std::numeric_limits<uint32_t>::max();
    }
    const size_t reserve = std::max<size_t>(files / 4, 64);
    ConnectionBudgetOptions options;
    options.max_total = files > reserve ? files - reserve : 1;
    return std::make_shared<ConnectionBudget>(std::move(options));
  }();
  return budget;
}

}  // namespace turnkey::net
