// GET /api/contacts, Bearer
//   200 {contacts: [{id, handle, displayName, addedAt}]} ordered by handle.
// POST /api/contacts {userId} or {handle}, Bearer
//   201 {contact} when added, 200 {contact} when it already was a contact;
//   404 for an unknown user, 400 for oneself. A handle may be written with a
//   leading '@' ("@bob"), as in search and initiateCall.
// DELETE /api/contacts/:userId, Bearer
//   200 {removed: true}; 404 when it was not a contact.
// PUT /api/contacts {userIds?: [...], handles?: [...]}, Bearer
//   Sync: the list becomes exactly the existing users named (unknown ones,
//   duplicates and oneself are skipped). 200 {contacts, notFound: [the
//   entries that matched nobody, as sent]}. At most 1000 entries in total.
//   Handles may carry a leading '@'.
#include <algorithm>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "auth/refresh_token.h"
#include "signal/account_rules.h"
#include "signal/api_json.h"
#include "signal/api_routes.h"

namespace turnkey::signal {

namespace {

// "@bob" names bob: handles never contain '@', and people write them with
// one (user search and initiateCall ignore it too).
std::string_view WithoutAt(std::string_view handle) {
  if (handle.starts_with('@')) {
    handle.remove_prefix(1);
  }
  return handle;
}

nlohmann::json ContactsJson(const std::vector<sql::Contact>& contacts) {
  nlohmann::json list = nlohmann::json::array();
  for (const sql::Contact& contact : contacts) {
    list.push_back(ContactJson(contact));
  }
  return list;
}

void ListContacts(ApiContext& api, ApiCall call) {
  auto job = [&api, user_id = call.user_id()] {
    return api.Db([&](sql::Store& store) { return store.ListContacts(user_id); });
  };
  api.RunRead(std::move(call), std::move(job),
              [](ApiCall call, base::Result<std::vector<sql::Contact>> contacts) {
                if (!contacts) {
                  call.Fail(FromStoreError(contacts.error()));
                  return;
                }
                call.Ok(nlohmann::json{{"contacts", ContactsJson(*contacts)}});
              });
}

struct AddOutcome {
  sql::Contact contact;
  bool added = false;
};

void AddContact(ApiContext& api, ApiCall call) {
  auto body = call.JsonBody();
  if (!body) {
    call.Fail(body.error());
    return;
  }
  auto user_id = OptionalString(*body, "userId");
  if (!user_id) {
    call.Fail(user_id.error());
    return;
  }
  auto handle = OptionalString(*body, "handle");
  if (!handle) {
    call.Fail(handle.error());
    return;
  }
  if (*handle) {
    **handle = std::string(WithoutAt(**handle));
  }
  if (!*user_id && !*handle) {
    call.Fail(ApiError::Validation("userId", "userId is required"));
    return;
  }
  if (*user_id && !auth::IsWellFormedUserId(**user_id)) {
    // Clients do not know the form of ids: one that cannot exist is simply
    // not found, as in DELETE and in a sync's notFound.
    call.Fail(ApiError::NotFound("User not found"));
    return;
  }
  if (!*user_id && CheckHandle(**handle)) {
    call.Fail(ApiError::NotFound("User not found"));
    return;
  }
  if (*user_id && **user_id == call.user_id()) {
    call.Fail(ApiError::Validation("userId", "you cannot add yourself as a contact"));
    return;
  }
  // The field that named the contact, for a refusal found by the store.
  const char* field = *user_id ? "userId" : "handle";
  auto job = [&api, owner = call.user_id(), user_id = std::move(*user_id),
              handle = std::move(*handle)]() -> base::Result<AddOutcome> {
    auto user = api.Db([&](sql::Store& store) {
      return user_id ? store.GetUserById(*user_id) : store.GetUserByHandle(*handle);
    });
    if (!user) {
      return std::unexpected(user.error());
    }
    AddOutcome outcome;
    outcome.contact.user = sql::UserSummary{user->id, user->handle, user->display_name};
    outcome.contact.added_at_ms = api.NowMs();
    auto added = api.Db([&](sql::Store& store) {
      return store.AddContact(owner, user->id, outcome.contact.added_at_ms);
    });
    if (!added) {
      return std::unexpected(added.error());
    }
    outcome.added = *added;
    if (!outcome.added) {
      // Report when it really was added.
      auto contacts = api.Db([&](sql::Store& store) { return store.ListContacts(owner); });
      if (contacts) {
        for (const sql::Contact& contact : *contacts) {
          if (contact.user.id == user->id) {
            outcome.contact = contact;
          }
        }
      }
    }
    return outcome;
  };
  api.Run(std::move(call), std::move(job), [field](ApiCall call, base::Result<AddOutcome> outcome) {
    if (!outcome) {
      if (outcome.error().code == base::ErrorCode::kNotFound) {
        call.Fail(ApiError::NotFound("User not found"));
      } else if (outcome.error().code == base::ErrorCode::kInvalidArgument) {
        call.Fail(ApiError::Validation(field, "you cannot add yourself as a contact"));
      } else {
        call.Fail(FromStoreError(outcome.error()));
      }
      return;
    }
    call.Ok(nlohmann::json{{"contact", ContactJson(outcome->contact)}},
            outcome->added ? "Contact added" : "Already a contact", outcome->added ? 201 : 200);
  });
}

void RemoveContact(ApiContext& api, ApiCall call) {
  std::string contact_id(call.request().Param("userId").value_or(""));
  auto job = [&api, owner = call.user_id(), contact_id = std::move(contact_id)] {
    return api.Db([&](sql::Store& store) { return store.RemoveContact(owner, contact_id); });
  };
  api.Run(std::move(call), std::move(job), [](ApiCall call, base::Result<bool> removed) {
    if (!removed) {
      call.Fail(FromStoreError(removed.error()));
      return;
    }
    if (!*removed) {
      call.Fail(ApiError::NotFound("Not a contact"));
      return;
    }
    call.Ok(nlohmann::json{{"removed", true}}, "Contact removed");
  });
}

// Reads an optional array of strings; VALIDATION_ERROR naming it otherwise.
std::expected<std::vector<std::string>, ApiError> StringArray(const nlohmann::json& body,
                                                              std::string_view name,
                                                              bool& present) {
  std::vector<std::string> out;
  auto it = body.find(name);
  present = it != body.end() && !it->is_null();
  if (!present) {
    return out;
  }
  auto invalid = [&] {
    return std::unexpected(ApiError::Validation(
        std::string(name), std::string(name) + " must be an array of strings"));
  };
  if (!it->is_array()) {
    return invalid();
  }
  for (const nlohmann::json& item : *it) {
    if (!item.is_string()) {
      return invalid();
    }
    out.push_back(item.get<std::string>());
  }
  return out;
}

void SyncContacts(ApiContext& api, ApiCall call) {
  auto body = call.JsonBody();
  if (!body) {
    call.Fail(body.error());
    return;
  }
  bool has_ids = false;
  bool has_handles = false;
  auto user_ids = StringArray(*body, "userIds", has_ids);
  if (!user_ids) {
    call.Fail(user_ids.error());
    return;
  }
  auto handles = StringArray(*body, "handles", has_handles);
  if (!handles) {
    call.Fail(handles.error());
    return;
  }
  if (!has_ids && !has_handles) {
    call.Fail(ApiError::Validation("userIds", "send userIds and/or handles (arrays)"));
    return;
  }
  if (user_ids->size() + handles->size() > static_cast<size_t>(sql::kMaxPageSize)) {
    // Named after the longer list, the one a client would shorten.
    call.Fail(ApiError::Validation(user_ids->size() >= handles->size() ? "userIds" : "handles",
                                   "at most 1000 entries in total"));
    return;
  }
  // The store looks handles up without their '@'; notFound reports them as
  // sent. A bare handle that is also a userIds entry keeps its own text.
  std::unordered_map<std::string, std::string> sent_as;
  const std::unordered_set<std::string> id_entries(user_ids->begin(), user_ids->end());
  for (std::string& handle : *handles) {
    std::string bare(WithoutAt(handle));
    if (bare.size() != handle.size()) {
      if (!id_entries.contains(bare)) {
        sent_as.try_emplace(bare, handle);
      }
      handle = std::move(bare);
    }
  }
  auto job = [&api, owner = call.user_id(), user_ids = std::move(*user_ids),
              handles = std::move(*handles),
              sent_as = std::move(sent_as)]() -> base::Result<nlohmann::json> {
    auto synced = api.Db([&](sql::Store& store) {
      return store.ReplaceContacts(owner, user_ids, handles, api.NowMs());
    });
    if (!synced) {
      return std::unexpected(synced.error());
    }
    for (std::string& entry : synced->not_found) {
      if (auto it = sent_as.find(entry); it != sent_as.end()) {
        entry = it->second;
      }
    }
    return nlohmann::json{{"contacts", ContactsJson(synced->contacts)},
                          {"notFound", synced->not_found}};
  };
  api.Run(std::move(call), std::move(job), [](ApiCall call, base::Result<nlohmann::json> data) {
    if (!data) {
      call.Fail(FromStoreError(data.error()));
      return;
    }
    call.Ok(std::move(*data), "Contacts synced");
  });
}

}  // namespace

base::Status AddContactRoutes(ApiContext& api) {
  using Access = ApiContext::Access;
  return api.AddAll({{"GET", "/api/contacts", Access::kUser, &ListContacts},
                     {"POST", "/api/contacts", Access::kUser, &AddContact},
                     {"PUT", "/api/contacts", Access::kUser, &SyncContacts},
                     {"DELETE", "/api/contacts/:userId", Access::kUser, &RemoveContact}});
}

}  // namespace turnkey::signal
