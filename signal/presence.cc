#include "signal/presence.h"

#include <algorithm>

namespace turnkey::signal {

bool Presence::Add(uint64_t socket, std::string_view user_id) {
  if (user_id.empty()) {
    return false;
  }
  auto [it, inserted] = users_by_socket_.try_emplace(socket, user_id);
  if (!inserted) {
    return false;
  }
  auto user = sockets_by_user_.find(user_id);
  if (user == sockets_by_user_.end()) {
    user = sockets_by_user_.emplace(std::string(user_id), std::vector<uint64_t>{}).first;
  }
  user->second.push_back(socket);
  return true;
}

std::optional<std::string> Presence::Remove(uint64_t socket) {
  auto it = users_by_socket_.find(socket);
  if (it == users_by_socket_.end()) {
    return std::nullopt;
  }
  std::string user_id = std::move(it->second);
  users_by_socket_.erase(it);
  auto user = sockets_by_user_.find(user_id);
  if (user != sockets_by_user_.end()) {
    std::erase(user->second, socket);
    if (user->second.empty()) {
      sockets_by_user_.erase(user);
    }
  }
  return user_id;
}

const std::string* Presence::UserOf(uint64_t socket) const {
  auto it = users_by_socket_.find(socket);
  return it == users_by_socket_.end() ? nullptr : &it->second;
}

std::span<const uint64_t> Presence::SocketsOf(std::string_view user_id) const {
  auto it = sockets_by_user_.find(user_id);
  if (it == sockets_by_user_.end()) {
    return {};
  }
  return it->second;
}

bool Presence::IsOnline(std::string_view user_id) const {
  return sockets_by_user_.find(user_id) != sockets_by_user_.end();
}

}  // namespace turnkey::signal
