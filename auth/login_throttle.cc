#include "auth/login_throttle.h"

#include <algorithm>
#include <limits>

#include "base/bytes.h"
#include "base/crypto.h"

namespace turnkey::auth {

namespace {

constexpr size_t kAccountKeyBytes = 16;

std::chrono::seconds CeilSeconds(base::Duration d) {
  return std::max(std::chrono::ceil<std::chrono::seconds>(d), std::chrono::seconds{1});
}

}  // namespace

base::Result<LoginThrottle> LoginThrottle::Create(LoginThrottleOptions options) {
  if (options.first_delay <= std::chrono::seconds{0}) {
    return base::InvalidArgument("login throttle first_delay must be positive");
  }
  if (options.max_delay < options.first_delay) {
    return base::InvalidArgument("login throttle max_delay must be at least first_delay");
  }
  if (options.forget_after < options.max_delay) {
    return base::InvalidArgument("login throttle forget_after must be at least max_delay");
  }
  if (options.known_for <= std::chrono::seconds{0}) {
    return base::InvalidArgument("login throttle known_for must be positive");
  }
  if (options.max_entries == 0) {
    return base::InvalidArgument("login throttle max_entries must be positive");
  }
  return LoginThrottle(options);
}

std::string LoginThrottle::AccountKey(std::string_view account) {
  const base::Sha256Digest digest = base::Sha256(base::AsBytes(account));
  return std::string(reinterpret_cast<const char*>(digest.data()), kAccountKeyBytes);
}

std::string LoginThrottle::PairKey(const std::string& account_key,
                                   const base::SocketAddress& from) {
  return account_key + from.ClientBlock();
}

base::Duration LoginThrottle::DelayAfter(uint32_t failures, uint32_t free_failures) const {
  if (failures <= free_failures) {
    return base::Duration::zero();
  }
  base::Duration delay = options_.first_delay;
  // Doubling stops at the cap, so this runs at most ~log2(max/first) times
  // and never overflows.
  for (uint32_t n = failures - free_failures - 1; n > 0 && delay < options_.max_delay; --n) {
    delay *= 2;
  }
  return std::min<base::Duration>(delay, options_.max_delay);
}

ThrottleVerdict LoginThrottle::Check(std::string_view account, const base::SocketAddress& from,
                                     base::MonoTime now) const {
  base::MonoTime until = now;
  const std::string key = AccountKey(account);
  const std::string block = from.ClientBlock();
  const Table::Entry* counted = known_.Contains(key, block, now, options_.known_for)
                                    ? pairs_.Find(PairKey(key, from), now, options_.forget_after)
                                    : accounts_.Find(key, now, options_.forget_after);
  if (counted != nullptr) {
    until = std::max(until, counted->blocked_until);
  }
  const Table::Entry* address = addresses_.Find(block, now, options_.forget_after);
  if (address != nullptr) {
    until = std::max(until, address->blocked_until);
  }
  // Checks under way count as failures to come.
  const auto under_way = [](const std::unordered_map<std::string, uint32_t>& attempts,
                            const std::string& k) -> uint64_t {
    auto it = attempts.find(k);
    return it == attempts.end() ? 0 : it->second;
  };
  const uint64_t account_pending = under_way(account_attempts_, key);
  const uint64_t address_pending = under_way(address_attempts_, block);
  if ((account_pending > 0 && (counted != nullptr ? counted->failures : 0) + account_pending >=
                                  options_.account_free_failures) ||
      (address_pending > 0 && (address != nullptr ? address->failures : 0) + address_pending >=
                                  options_.address_free_failures)) {
    until = std::max(until, now + std::chrono::seconds(1));
  }
  if (until <= now) {
    return {};
  }
  return ThrottleVerdict{.allowed = false, .retry_after = CeilSeconds(until - now)};
}

void LoginThrottle::BeginAttempt(std::string_view account, const base::SocketAddress& from) {
  ++account_attempts_[AccountKey(account)];
  ++address_attempts_[from.ClientBlock()];
}

void LoginThrottle::EndAttempt(std::string_view account, const base::SocketAddress& from) {
  const auto end = [](std::unordered_map<std::string, uint32_t>& attempts, const std::string& k) {
    auto it = attempts.find(k);
    if (it != attempts.end() && --it->second == 0) {
      attempts.erase(it);
    }
  };
  end(account_attempts_, AccountKey(account));
  end(address_attempts_, from.ClientBlock());
}

void LoginThrottle::RecordFailure(std::string_view account, const base::SocketAddress& from,
                                  base::MonoTime now) {
  const std::string key = AccountKey(account);
  Fail(accounts_, key, options_.account_free_failures, now);
  Fail(pairs_, PairKey(key, from), options_.account_free_failures, now);
  Fail(addresses_, from.ClientBlock(), options_.address_free_failures, now);
}

void LoginThrottle::RecordSuccess(std::string_view account, const base::SocketAddress& from,
                                  base::MonoTime now) {
  const std::string key = AccountKey(account);
  const Table::Entry* account_count = accounts_.Find(key, now, options_.forget_after);
  if (account_count == nullptr || account_count->blocked_until <= now) {
    accounts_.Erase(key);
  }
  pairs_.Erase(PairKey(key, from));
  known_.DropOlderThan(now - options_.known_for);
  known_.Add(key, from.ClientBlock(), now, options_.max_entries);
}

void LoginThrottle::Sweep(base::MonoTime now) {
  accounts_.DropOlderThan(now - options_.forget_after);
  addresses_.DropOlderThan(now - options_.forget_after);
  pairs_.DropOlderThan(now - options_.forget_after);
  known_.DropOlderThan(now - options_.known_for);
}

void LoginThrottle::Fail(Table& table, const std::string& key, uint32_t free_failures,
                         base::MonoTime now) {
  table.DropOlderThan(now - options_.forget_after);
  Table::Entry& entry = table.Touch(key, now, options_.forget_after, options_.max_entries);
  if (entry.failures < std::numeric_limits<uint32_t>::max()) {
    ++entry.failures;
  }
  entry.last_failure = now;
  entry.blocked_until = now + DelayAfter(entry.failures, free_failures);
}

const LoginThrottle::Table::Entry* LoginThrottle::Table::Find(const std::string& key,
                                                              base::MonoTime now,
                                                              base::Duration forget) const {
  auto it = index_.find(key);
  if (it == index_.end() || now - it->second->last_failure >= forget) {
    return nullptr;
  }
  return &*it->second;
}

LoginThrottle::Table::Entry& LoginThrottle::Table::Touch(const std::string& key, base::MonoTime now,
                                                         base::Duration forget,
                                                         size_t max_entries) {
  auto it = index_.find(key);
  if (it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
    Entry& entry = lru_.front();
    if (now - entry.last_failure >= forget) {
      entry.failures = 0;
      entry.blocked_until = {};
    }
    return entry;
  }
  while (index_.size() >= max_entries) {
    index_.erase(lru_.back().key);
    lru_.pop_back();
  }
  lru_.push_front(Entry{.key = key});
  index_.emplace(key, lru_.begin());
  return lru_.front();
}

void LoginThrottle::Table::Erase(const std::string& key) {
  auto it = index_.find(key);
  if (it != index_.end()) {
    lru_.erase(it->second);
    index_.erase(it);
  }
}

void LoginThrottle::Table::DropOlderThan(base::MonoTime cutoff) {
  // The list is ordered by last failure, so the stale entries are a suffix.
  while (!lru_.empty() && lru_.back().last_failure <= cutoff) {
    index_.erase(lru_.back().key);
    lru_.pop_back();
  }
}

bool LoginThrottle::KnownAddresses::Contains(const std::string& account_key,
                                             const std::string& block, base::MonoTime now,
                                             base::Duration known_for) const {
  auto it = index_.find(account_key);
  if (it == index_.end()) {
    return false;
  }
  return std::any_of(it->second->known.begin(), it->second->known.end(), [&](const Known& k) {
    return !k.block.empty() && k.block == block && now - k.last_login < known_for;
  });
}

void LoginThrottle::KnownAddresses::Add(const std::string& account_key, const std::string& block,
                                        base::MonoTime now, size_t max_accounts) {
  auto it = index_.find(account_key);
  if (it != index_.end()) {
    lru_.splice(lru_.begin(), lru_, it->second);
  } else {
    while (index_.size() >= max_accounts) {
      index_.erase(lru_.back().account_key);
      lru_.pop_back();
    }
    lru_.push_front(Entry{.account_key = account_key});
    index_.emplace(account_key, lru_.begin());
  }
  Entry& entry = lru_.front();
  entry.last_login = now;
  // The same address again, else a free slot, else the one used longest ago.
  Known* slot = &entry.known.front();
  for (Known& k : entry.known) {
    if (k.block == block) {
      slot = &k;
      break;
    }
    if (k.block.empty() || k.last_login < slot->last_login) {
      slot = &k;
    }
  }
  slot->block = block;
  slot->last_login = now;
}

void LoginThrottle::KnownAddresses::DropOlderThan(base::MonoTime cutoff) {
  // Ordered by the account's last login, so the stale accounts are a suffix.
  while (!lru_.empty() && lru_.back().last_login <= cutoff) {
    index_.erase(lru_.back().account_key);
    lru_.pop_back();
  }
}

}  // namespace turnkey::auth
