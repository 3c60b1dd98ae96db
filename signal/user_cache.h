// UserCache: the in-memory UserDirectory the signaling loop answers
// CallManager's synchronous lookups from: the public fields (id, handle,
// display name) of every user with a connected socket.
//
// CallService loads a user from the store while authorizing the socket's
// CONNECT and Acquire()s the entry when the socket joins; Release() on
// disconnect drops it with the user's last socket, so the cache holds what
// presence holds and nothing more. Ids never change, so FindById is
// authoritative for cached users. Handles can change (PATCH /api/users/me)
// and a released handle can be taken by someone else, so callers that need
// an exact answer for a handle ask the store instead (CallService does).
//
// Not thread-safe: owned and used by the signaling loop.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "signal/call.h"
#include "signal/call_sinks.h"
#include "signal/presence.h"

namespace turnkey::signal {

class UserCache final : public UserDirectory {
 public:
  // Stores `user` (replacing older fields of the same id) and takes one
  // reference on it. Returns the cached copy of the id, valid until the
  // reference is released; ignored (and "" returned) if the id is empty.
  std::string_view Acquire(const UserInfo& user);
  // Drops one reference of `user_id`; the entry goes with the last one.
  // Unknown ids are ignored.
  void Release(std::string_view user_id);
  // Replaces the fields of a cached user (a fresher store read) without
  // taking a reference; a user not cached is not added.
  void Refresh(const UserInfo& user);

  std::optional<UserInfo> FindById(std::string_view user_id) override;
  // Among cached users only; ASCII case-insensitive, as sql::Store.
  std::optional<UserInfo> FindByHandle(std::string_view handle) override;

  size_t size() const { return users_.size(); }

 private:
  // Keyed by user.id, which is never changed in place: the id is stored
  // once per user, and handles_ points at it. (A set's elements are const;
  // the fields the cache updates are mutable.)
  struct Entry {
    mutable UserInfo user;
    mutable size_t refs = 0;
  };
  struct EntryHash {
    using is_transparent = void;
    size_t operator()(std::string_view id) const { return StringHash{}(id); }
    size_t operator()(const Entry& entry) const { return StringHash{}(entry.user.id); }
  };
  struct EntryEq {
    using is_transparent = void;
    static std::string_view IdOf(std::string_view id) { return id; }
    static std::string_view IdOf(const Entry& entry) { return entry.user.id; }
    bool operator()(const auto& a, const auto& b) const { return IdOf(a) == IdOf(b); }
  };
  // Sets the handle and display name of a cached user and indexes its handle.
  void Update(const Entry& entry, const UserInfo& user);
  void IndexHandle(const UserInfo& user);
  void UnindexHandle(const UserInfo& user);

  std::unordered_set<Entry, EntryHash, EntryEq> users_;
  // ASCII-lowercased handle -> the user's id in users_ (valid while there).
  std::unordered_map<std::string, std::string_view, StringHash, std::equal_to<>> handles_;
};

}  // namespace turnkey::signal
