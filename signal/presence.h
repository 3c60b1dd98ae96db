// Presence: which user each connected signaling socket belongs to, and each
// online user's sockets (a user may be connected from several devices).
//
// Socket ids are opaque and unique among connected sockets. A user is online
// while at least one socket of theirs is connected. Not thread-safe: owned
// and used by the signaling loop (CallManager keeps one).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace turnkey::signal {

// Lets unordered maps keyed by std::string be searched with a string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

class Presence {
 public:
  // Registers `socket` as a device of `user_id`. False (and nothing
  // changes) if `socket` is already registered or `user_id` is empty.
  bool Add(uint64_t socket, std::string_view user_id);
  // Unregisters `socket`; returns its user, or nullopt if it was unknown.
  std::optional<std::string> Remove(uint64_t socket);

  // The user of `socket`, or nullptr. Valid until the next Add/Remove.
  const std::string* UserOf(uint64_t socket) const;
  // The sockets of `user_id` in the order they connected; empty if offline.
  // Valid until the next Add/Remove.
  std::span<const uint64_t> SocketsOf(std::string_view user_id) const;
  bool IsOnline(std::string_view user_id) const;

  size_t socket_count() const { return users_by_socket_.size(); }
  size_t user_count() const { return sockets_by_user_.size(); }

 private:
  std::unordered_map<uint64_t, std::string> users_by_socket_;
  std::unordered_map<std::string, std::vector<uint64_t>, StringHash, std::equal_to<>>
      sockets_by_user_;
};

}  // namespace turnkey::signal
