// LoginThrottle: slows password guessing per account and per source address.
//
// Each account, each source address, and each pair of the two has a count of
// failed logins. The first `*_free_failures` cost nothing; after that every
// further failure makes the next attempt wait, starting at `first_delay` and
// doubling with each failure up to `max_delay`. A successful login clears the
// pair's count, and the account's unless that is holding attempts back right
// now (a login from a known address, below, must not cut short the wait of
// strangers guessing at the account); the address count is left alone (one
// valid account must not let an attacker reset the count of the address
// guessing at others) and is forgotten, like every count, after
// `forget_after` without a failure.
//
// An address that logged in to an account within `known_for` is known to that
// account (the last kKnownPerAccount addresses each account logged in from):
// there the pair's count stands in for the account's. Anyone can make an
// account's count climb from anywhere, and without this six wrong guesses
// from a stranger would keep its owner out for up to `max_delay`. Guesses from
// the known address itself still wait as before (the pair counts them), and
// so do guesses from every other address (the account counts them).
//
// An address counts as its SocketAddress::ClientBlock(): its IPv4 address, or for IPv6 its /64
// prefix (one host usually owns a whole /64, RFC 7421), with IPv4-mapped IPv6 counted as the IPv4
// address. An account is whatever string the caller names it by; pass a normalised form (e.g. the
// lower-cased email) and pass it whether or not the account exists, so answers do not reveal which
// accounts exist. Accounts are kept as a 16-byte digest, so long names cost no memory.
//
// Memory is bounded: at most `max_entries` accounts, addresses and pairs are
// tracked, the one with the oldest failure is evicted first, and entries past
// `forget_after` are dropped as new failures arrive (or by Sweep()); known
// addresses are kept for at most `max_entries` accounts, the one that logged
// in longest ago evicted first, so one account's logins from ever new
// addresses cannot push out another's.
//
// Sans-I/O: `now` is passed in (a monotonic time); nothing here reads a clock
// or logs. Not thread-safe: one owner, normally the signaling loop thread
// (Check before queueing the password check, Record* when its result comes
// back).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "base/address.h"
#include "base/clock.h"
#include "base/status.h"

namespace turnkey::auth {

struct LoginThrottleOptions {
  // Failures an account may have before attempts must wait. Default 5.
  uint32_t account_free_failures = 5;
  // Failures an address may have before attempts must wait; higher than per
  // account because many users can share one NAT. Default 20.
  uint32_t address_free_failures = 20;
  // Wait after the first failure beyond the allowance; doubles with every
  // further failure. > 0. Default 1s.
  std::chrono::seconds first_delay{1};
  // Longest wait. >= first_delay. Default 15m.
  std::chrono::seconds max_delay{15 * 60};
  // A count with no new failure for this long is forgotten. >= max_delay.
  // Default 1h.
  std::chrono::seconds forget_after{60 * 60};
  // How long an address that logged in to an account stays known to it
  // (renewed by each login from there). > 0. Default 30 days.
  std::chrono::seconds known_for{30 * 24 * 60 * 60};
  // Most accounts, and separately most addresses, account-address pairs and
  // known addresses, tracked at once. > 0. Default 100000 (measured about
  // 0.2 KB per entry: some 20 MB per table, 60 MB in all, at worst).
  size_t max_entries = 100'000;
};

struct ThrottleVerdict {
  // False: refuse the attempt without checking the password (HTTP 429).
  bool allowed = true;
  // When !allowed: how long until an attempt may be made, rounded up to whole
  // seconds, >= 1s (the Retry-After value). 0 when allowed.
  std::chrono::seconds retry_after{0};
};

class LoginThrottle {
 public:
  // kInvalidArgument if the options break the rules above.
  [[nodiscard]] static base::Result<LoginThrottle> Create(LoginThrottleOptions options = {});

  // Whether an attempt on `account` from `from` may go ahead at `now`. Does not
  // count as an attempt; the port of `from` is ignored.
  ThrottleVerdict Check(std::string_view account, const base::SocketAddress& from,
                        base::MonoTime now) const;

  // A password check for `account` from `from` is under way (Check allowed
  // it) / is over (whatever its outcome, after Record*). While checks are
  // under way, Check counts them as failures to come: an account (or
  // address) whose failures plus checks under way reach its free failures
  // gets no further attempt until one ends (retry after 1 s), so parallel
  // guesses get no more than sequential ones. Attempt does both.
  void BeginAttempt(std::string_view account, const base::SocketAddress& from);
  void EndAttempt(std::string_view account, const base::SocketAddress& from);

  // A wrong password (or an unknown account) for `account` from `from`.
  void RecordFailure(std::string_view account, const base::SocketAddress& from, base::MonoTime now);

  // A correct password: forgets the account's failures (and the pair's), and
  // makes `from` known to the account.
  void RecordSuccess(std::string_view account, const base::SocketAddress& from, base::MonoTime now);

  // Drops every entry whose last failure is `forget_after` or more before
  // `now`. Optional (failures do it too); for a periodic timer.
  void Sweep(base::MonoTime now);

  size_t account_entries() const { return accounts_.size(); }
  size_t address_entries() const { return addresses_.size(); }
  size_t pair_entries() const { return pairs_.size(); }
  // Accounts with known addresses.
  size_t known_entries() const { return known_.size(); }

  // Addresses remembered per account.
  static constexpr size_t kKnownPerAccount = 4;

  // The wait after `failures` failures with `free_failures` allowed: 0 up to
  // the allowance, then first_delay * 2^(failures - free - 1), capped.
  base::Duration DelayAfter(uint32_t failures, uint32_t free_failures) const;

 private:
  // Failures of one account, address or pair, most recently failed first.
  class Table {
   public:
    struct Entry {
      std::string key;
      uint32_t failures = 0;
      base::MonoTime last_failure{};
      base::MonoTime blocked_until{};
    };

    // The live entry for `key`, or nullptr (none, or forgotten by `now`).
    const Entry* Find(const std::string& key, base::MonoTime now, base::Duration forget) const;
    // The entry for `key`, made the most recent; created (evicting the oldest
    // when full) or reset if it was forgotten by `now`.
    Entry& Touch(const std::string& key, base::MonoTime now, base::Duration forget,
                 size_t max_entries);
    void Erase(const std::string& key);
    void DropOlderThan(base::MonoTime cutoff);
    size_t size() const { return index_.size(); }

   private:
    std::list<Entry> lru_;  // front = most recent failure
    std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  };

  // The addresses each account last logged in from, the account that logged
  // in most recently first.
  class KnownAddresses {
   public:
    bool Contains(const std::string& account_key, const std::string& block, base::MonoTime now,
                  base::Duration known_for) const;
    // Remembers `block` for the account (replacing its oldest address when it
    // has kKnownPerAccount), evicting the account that logged in longest ago
    // when `max_accounts` are kept.
    void Add(const std::string& account_key, const std::string& block, base::MonoTime now,
             size_t max_accounts);
    void DropOlderThan(base::MonoTime cutoff);
    size_t size() const { return index_.size(); }

   private:
    struct Known {
      std::string block;  // "" = unused
      base::MonoTime last_login{};
    };
    struct Entry {
      std::string account_key;
      std::array<Known, kKnownPerAccount> known;
      base::MonoTime last_login{};
    };
    std::list<Entry> lru_;
    std::unordered_map<std::string, std::list<Entry>::iterator> index_;
  };

  explicit LoginThrottle(const LoginThrottleOptions& options) : options_(options) {}

  static std::string AccountKey(std::string_view account);
  // The account's key followed by the address's client block.
  static std::string PairKey(const std::string& account_key, const base::SocketAddress& from);
  void Fail(Table& table, const std::string& key, uint32_t free_failures, base::MonoTime now);

  // Password checks under way, by account key and by address client block.
  std::unordered_map<std::string, uint32_t> account_attempts_;
  std::unordered_map<std::string, uint32_t> address_attempts_;
  LoginThrottleOptions options_;
  Table accounts_;
  Table addresses_;
  Table pairs_;
  KnownAddresses known_;
};

// One password check under way (LoginThrottle::BeginAttempt), ended by End()
// when its answer comes back, or when this is destroyed, on whatever path the
// check's answer takes. Move-only.
class ThrottledAttempt {
 public:
  ThrottledAttempt(LoginThrottle& throttle, std::string account, base::SocketAddress from)
      : throttle_(&throttle), account_(std::move(account)), from_(from) {
    throttle_->BeginAttempt(account_, from_);
  }
  ThrottledAttempt(ThrottledAttempt&& other) noexcept
      : throttle_(std::exchange(other.throttle_, nullptr)),
        account_(std::move(other.account_)),
        from_(other.from_) {}
  ThrottledAttempt& operator=(ThrottledAttempt&&) = delete;
  ~ThrottledAttempt() { End(); }
  // Ends the check now (the answer is being sent; the next attempt of a
  // client that waits for it must not find this one under way). Idempotent.
  void End() {
    if (throttle_ != nullptr) {
      std::exchange(throttle_, nullptr)->EndAttempt(account_, from_);
    }
  }
  const std::string& account() const { return account_; }

 private:
  LoginThrottle* throttle_;
  std::string account_;
  base::SocketAddress from_;
};

}  // namespace turnkey::auth
