#include "signal/user_cache.h"

#include <utility>

namespace turnkey::signal {
namespace {

// sql::Store compares handles ignoring ASCII case only.
std::string FoldHandle(std::string_view handle) {
  std::string folded(handle);
  for (char& c : folded) {
    if (c >= 'A' && c <= 'Z') {
      c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return folded;
}

}  // namespace

std::string_view UserCache::Acquire(const UserInfo& user) {
  if (user.id.empty()) {
    return {};
  }
  auto it = users_.find(std::string_view(user.id));
  if (it == users_.end()) {
    it = users_.insert(Entry{.user = UserInfo{.id = user.id}}).first;
  }
  Update(*it, user);
  ++it->refs;
  return it->user.id;
}

void UserCache::Release(std::string_view user_id) {
  auto it = users_.find(user_id);
  if (it == users_.end()) {
    return;
  }
  if (--it->refs == 0) {
    UnindexHandle(it->user);
    users_.erase(it);
  }
}

void UserCache::Refresh(const UserInfo& user) {
  auto it = users_.find(std::string_view(user.id));
  if (it != users_.end()) {
    Update(*it, user);
  }
}

void UserCache::Update(const Entry& entry, const UserInfo& user) {
  UnindexHandle(entry.user);
  entry.user.handle = user.handle;
  entry.user.display_name = user.display_name;
  IndexHandle(entry.user);
}

std::optional<UserInfo> UserCache::FindById(std::string_view user_id) {
  auto it = users_.find(user_id);
  if (it == users_.end()) {
    return std::nullopt;
  }
  return it->user;
}

std::optional<UserInfo> UserCache::FindByHandle(std::string_view handle) {
  auto it = handles_.find(FoldHandle(handle));
  if (it == handles_.end()) {
    return std::nullopt;
  }
  return FindById(it->second);
}

void UserCache::IndexHandle(const UserInfo& user) {
  // `user` is the entry in users_, so the view stays valid until
  // UnindexHandle, which runs before the entry changes handle or goes.
  if (!user.handle.empty()) {
    handles_[FoldHandle(user.handle)] = user.id;
  }
}

void UserCache::UnindexHandle(const UserInfo& user) {
  if (user.handle.empty()) {
    return;
  }
  auto it = handles_.find(FoldHandle(user.handle));
  if (it != handles_.end() && it->second == user.id) {
    handles_.erase(it);
  }
}

}  // namespace turnkey::signal
