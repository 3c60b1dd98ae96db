// The Store test suite, written once and instantiated per backend
// (store_sqlite_test.cc, store_mysql_test.cc): identical expectations, so the
// two stores behave the same. GoogleTest's type-parameterized tests must be
// visible where they are instantiated, so the whole suite lives in this
// header: include it from exactly one .cc per test binary.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "sql/migrations.h"
#include "sql/sql_store.h"
#include "sql/store.h"

namespace turnkey::sql::testing {

template <typename Backend>
class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_.emplace();
    ASSERT_EQ(backend_->setup_error(), "") << "backend setup failed";
    auto store = backend_->Open(Embedded());
    ASSERT_TRUE(store) << store.error().message;
    store_ = std::move(*store);
    // What a fresh database looks like, for the FreshDatabase test.
    fresh_state_ = store_->GetSchemaState();
    fresh_check_ = store_->CheckSchema();
    auto applied = store_->Migrate();
    ASSERT_TRUE(applied) << applied.error().message;
    ASSERT_EQ(*applied, static_cast<int>(Embedded().size()));
  }
  void TearDown() override {
    store_.reset();
    backend_.reset();
  }

  static std::span<const Migration> Embedded() { return EmbeddedMigrations(Backend::kDialect); }

  // Another store on the same database, with `migrations` as its known list.
  std::unique_ptr<SqlStore> Reopen(std::span<const Migration> migrations) {
    auto store = backend_->Open(migrations);
    EXPECT_TRUE(store) << store.error().message;
    return store ? std::move(*store) : nullptr;
  }

  Store& store() { return *store_; }

  std::optional<Backend> backend_;
  std::unique_ptr<SqlStore> store_;
  base::Result<SchemaState> fresh_state_;
  base::Status fresh_check_;
};

TYPED_TEST_SUITE_P(StoreTest);

// Helpers of the suite (inline: this header is included once per binary).

inline constexpr int64_t kNow = 1'700'000'000'000;

template <typename T>
inline std::optional<base::ErrorCode> CodeOf(const base::Result<T>& result) {
  if (result) {
    return std::nullopt;
  }
  return result.error().code;
}

inline std::optional<base::ErrorCode> CodeOf(const base::Status& status) {
  if (status) {
    return std::nullopt;
  }
  return status.error().code;
}

template <typename T>
inline std::string MessageOf(const base::Result<T>& result) {
  return result ? std::string() : result.error().message;
}

inline NewUser MakeUser(const std::string& handle, const std::string& email = "") {
  NewUser user;
  user.handle = handle;
  user.email = email.empty() ? handle + "@example.org" : email;
  user.display_name = "Name of " + handle;
  user.password_hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
  user.now_ms = kNow;
  return user;
}

inline User Create(Store& store, const std::string& handle, const std::string& email = "") {
  auto user = store.CreateUser(MakeUser(handle, email));
  EXPECT_TRUE(user) << handle << ": " << MessageOf(user);
  return user ? *user : User{};
}

inline Call MakeCall(const std::string& id, const User& caller, const User& callee,
                     int64_t created_at, CallStatus status = CallStatus::kCompleted,
                     CallType type = CallType::kAudio) {
  Call call;
  call.id = id;
  call.caller_id = caller.id;
  call.callee_id = callee.id;
  call.type = type;
  call.status = status;
  call.created_at_ms = created_at;
  if (status == CallStatus::kCompleted) {
    call.answered_at_ms = created_at + 2000;
    call.ended_at_ms = created_at + 62000;
    call.duration_seconds = 60;
    call.end_reason = "hangup";
  } else if (IsEndStatus(status)) {
    call.ended_at_ms = created_at + 30000;
    call.end_reason = std::string(CallStatusName(status));
  }
  return call;
}

inline std::vector<std::string> Handles(const std::vector<UserSummary>& users) {
  std::vector<std::string> out;
  for (const UserSummary& u : users) {
    out.push_back(u.handle);
  }
  return out;
}

inline std::vector<std::string> Handles(const std::vector<Contact>& contacts) {
  std::vector<std::string> out;
  for (const Contact& c : contacts) {
    out.push_back(c.user.handle);
  }
  return out;
}

inline std::vector<std::string> CallIds(const HistoryPage& page) {
  std::vector<std::string> out;
  for (const HistoryEntry& e : page.entries) {
    out.push_back(e.call.id);
  }
  return out;
}

// Strings that would break a query built by pasting text into SQL.
inline const std::vector<std::string>& InjectionPayloads() {
  static const std::vector<std::string> payloads = {
      "'; DROP TABLE users; --",
      "\" OR \"1\"=\"1",
      "' OR '1'='1",
      "x'); DELETE FROM calls; --",
      "\\'; SELECT SLEEP(5); -- \\",
      "%' UNION SELECT password_hash FROM users --",
      "`backtick` /* comment */ -- dash",
      "Robert'); DROP TABLE contacts;--",
      "emoji \xF0\x9F\x98\x80 and \xE2\x82\xAC",
  };
  return payloads;
}

// ---------------------------------------------------------------- users

TYPED_TEST_P(StoreTest, CreateAndLookUpUser) {
  Store& store = this->store();
  auto created = store.CreateUser(MakeUser("Alice", "Alice@Example.ORG"));
  ASSERT_TRUE(created) << MessageOf(created);
  EXPECT_EQ(created->id.size(), 32u);
  EXPECT_EQ(created->handle, "Alice");
  EXPECT_EQ(created->created_at_ms, kNow);
  EXPECT_EQ(created->updated_at_ms, kNow);

  for (auto found : {store.GetUserById(created->id), store.GetUserByEmail("alice@example.org"),
                     store.GetUserByEmail("ALICE@EXAMPLE.ORG"), store.GetUserByHandle("alice"),
                     store.GetUserByHandle("ALICE")}) {
    ASSERT_TRUE(found) << MessageOf(found);
    EXPECT_EQ(found->id, created->id);
    EXPECT_EQ(found->email, "Alice@Example.ORG");  // display case kept
    EXPECT_EQ(found->handle, "Alice");
    EXPECT_EQ(found->display_name, "Name of Alice");
    EXPECT_EQ(found->password_hash, created->password_hash);
    EXPECT_EQ(found->created_at_ms, kNow);
  }
  EXPECT_EQ(CodeOf(store.GetUserById("nobody")), base::ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store.GetUserByEmail("bob@example.org")), base::ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store.GetUserByHandle("bob")), base::ErrorCode::kNotFound);
  // Malformed keys find nobody rather than erroring.
  EXPECT_EQ(CodeOf(store.GetUserById("not an id!")), base::ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store.GetUserByHandle("")), base::ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store.GetUserByEmail(std::string(400, 'a'))), base::ErrorCode::kNotFound);

  auto summary = store.GetUserSummaryById(created->id);
  ASSERT_TRUE(summary) << MessageOf(summary);
  EXPECT_EQ(*summary, (UserSummary{created->id, "Alice", "Name of Alice"}));
  EXPECT_EQ(CodeOf(store.GetUserSummaryById("nobody")), base::ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store.GetUserSummaryById("not an id!")), base::ErrorCode::kNotFound);
}

TYPED_TEST_P(StoreTest, CreateUserWithGivenId) {
  NewUser user = MakeUser("given");
  user.id = "user_1-A";
  auto created = this->store().CreateUser(user);
  ASSERT_TRUE(created) << MessageOf(created);
  EXPECT_EQ(created->id, "user_1-A");
  NewUser again = MakeUser("other");
  again.id = "user_1-A";
  auto duplicate = this->store().CreateUser(again);
  ASSERT_EQ(CodeOf(duplicate), base::ErrorCode::kAlreadyExists);
  EXPECT_EQ(duplicate.error().message, kIdTaken);
}

TYPED_TEST_P(StoreTest, EmailAndHandleConflictsIgnoreAsciiCase) {
  Store& store = this->store();
  Create(store, "Alice", "alice@example.org");

  auto same_email = store.CreateUser(MakeUser("alice2", "ALICE@example.ORG"));
  ASSERT_EQ(CodeOf(same_email), base::ErrorCode::kAlreadyExists);
  EXPECT_EQ(same_email.error().message, kEmailTaken);

  auto same_handle = store.CreateUser(MakeUser("aLiCe", "other@example.org"));
  ASSERT_EQ(CodeOf(same_handle), base::ErrorCode::kAlreadyExists);
  EXPECT_EQ(same_handle.error().message, kHandleTaken);

  // Both taken: the email is reported, on both backends.
  auto both = store.CreateUser(MakeUser("ALICE", "Alice@Example.org"));
  ASSERT_EQ(CodeOf(both), base::ErrorCode::kAlreadyExists);
  EXPECT_EQ(both.error().message, kEmailTaken);

  // Only ASCII letters fold; trailing spaces and other characters count.
  EXPECT_TRUE(store.CreateUser(MakeUser("alice ", "a1@example.org")));
  EXPECT_TRUE(store.CreateUser(MakeUser("\xC3\x84lice", "a2@example.org")));  // Älice
  EXPECT_TRUE(store.CreateUser(MakeUser("\xC3\xA4lice", "a3@example.org")));  // älice
  EXPECT_TRUE(store.CreateUser(MakeUser("bob", "alice@example.org ")));
}

TYPED_TEST_P(StoreTest, UserFieldRules) {
  Store& store = this->store();
  auto expect_invalid = [&](NewUser user, std::string_view field) {
    auto result = store.CreateUser(user);
    ASSERT_EQ(CodeOf(result), base::ErrorCode::kInvalidArgument) << field;
    EXPECT_TRUE(result.error().message.starts_with(field)) << result.error().message;
  };
  NewUser user = MakeUser("rules");
  user.handle = "";
  expect_invalid(user, "handle");
  user = MakeUser("rules");
  user.handle = std::string(kMaxHandleBytes + 1, 'h');
  expect_invalid(user, "handle");
  user = MakeUser("rules");
  user.email = "bad\xC3(utf8@example.org";
  expect_invalid(user, "email");
  user = MakeUser("rules");
  user.display_name = std::string("nul\0inside", 10);
  expect_invalid(user, "display_name");
  user = MakeUser("rules");
  user.display_name = "overlong \xC0\xAF slash";
  expect_invalid(user, "display_name");
  user = MakeUser("rules");
  user.password_hash = "";
  expect_invalid(user, "password_hash");
  user = MakeUser("rules");
  user.id = "has space";
  expect_invalid(user, "id");

  // The limits themselves are fine, on both backends (MySQL columns are
  // sized in characters, so byte limits always fit).
  user = MakeUser(std::string(kMaxHandleBytes, 'h'));
  user.email = std::string(kMaxEmailBytes - 12, 'e') + "@example.org";
  user.display_name = std::string(kMaxDisplayNameBytes / 4, 'x');
  // 4-byte characters up to the byte limit.
  user.display_name.clear();
  for (size_t i = 0; i < kMaxDisplayNameBytes / 4; ++i) {
    user.display_name += "\xF0\x9F\x8E\x89";  // U+1F389
  }
  user.password_hash = std::string(kMaxPasswordHashBytes, 'p');
  auto created = store.CreateUser(user);
  ASSERT_TRUE(created) << MessageOf(created);
  auto found = store.GetUserById(created->id);
  ASSERT_TRUE(found);
  EXPECT_EQ(found->display_name, user.display_name);
  EXPECT_EQ(found->email, user.email);
}

TYPED_TEST_P(StoreTest, UpdateProfile) {
  Store& store = this->store();
  User alice = Create(store, "alice");
  User bob = Create(store, "bob");

  auto renamed = store.UpdateProfile(alice.id, {.display_name = "Alice A."}, kNow + 5);
  ASSERT_TRUE(renamed) << MessageOf(renamed);
  EXPECT_EQ(renamed->display_name, "Alice A.");
  EXPECT_EQ(renamed->handle, "alice");
  EXPECT_EQ(renamed->updated_at_ms, kNow + 5);
  EXPECT_EQ(renamed->created_at_ms, kNow);

  // Someone else's handle, in any case: refused, nothing changed.
  auto taken = store.UpdateProfile(alice.id, {.display_name = "X", .handle = "BOB"}, kNow + 6);
  ASSERT_EQ(CodeOf(taken), base::ErrorCode::kAlreadyExists);
  EXPECT_EQ(taken.error().message, kHandleTaken);
  EXPECT_EQ(store.GetUserById(alice.id)->display_name, "Alice A.");

  // One's own handle in another case is fine.
  auto recased = store.UpdateProfile(alice.id, {.handle = "ALICE"}, kNow + 7);
  ASSERT_TRUE(recased) << MessageOf(recased);
  EXPECT_EQ(recased->handle, "ALICE");
  // The summary the signaling CONNECT reads follows (SQLite: from its index).
  EXPECT_EQ(store.GetUserSummaryById(alice.id)->handle, "ALICE");
  EXPECT_EQ(store.GetUserSummaryById(alice.id)->display_name, "Alice A.");

  auto both = store.UpdateProfile(alice.id, {.display_name = "", .handle = "al"}, kNow + 8);
  ASSERT_TRUE(both) << MessageOf(both);
  EXPECT_EQ(both->handle, "al");
  EXPECT_EQ(both->display_name, "");
  EXPECT_EQ(CodeOf(store.GetUserByHandle("alice")), base::ErrorCode::kNotFound);
  EXPECT_EQ(store.GetUserByHandle("AL")->id, alice.id);
  // The old handle is free again.
  EXPECT_TRUE(store.UpdateProfile(bob.id, {.handle = "Alice"}, kNow + 9));

  EXPECT_EQ(CodeOf(store.UpdateProfile("nobody", {.display_name = "x"}, kNow)),
            base::ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store.UpdateProfile(alice.id, {.handle = ""}, kNow)),
            base::ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(store.UpdateProfile("bad id", {.handle = "x"}, kNow)),
            base::ErrorCode::kInvalidArgument);
}

TYPED_TEST_P(StoreTest, UpdatePasswordHash) {
  Store& store = this->store();
  User alice = Create(store, "alice");
  ASSERT_TRUE(store.UpdatePasswordHash(alice.id, alice.password_hash, "$argon2id$new", kNow + 1));
  auto found = store.GetUserById(alice.id);
  EXPECT_EQ(found->password_hash, "$argon2id$new");
  EXPECT_EQ(found->updated_at_ms, kNow + 1);
  // Only over the hash expected: a change made meanwhile stays.
  auto stale = store.UpdatePasswordHash(alice.id, alice.password_hash, "$argon2id$late", kNow + 2);
  EXPECT_EQ(CodeOf(stale), base::ErrorCode::kPermissionDenied);
  EXPECT_EQ(store.GetUserById(alice.id)->password_hash, "$argon2id$new");
  EXPECT_EQ(CodeOf(store.UpdatePasswordHash("nobody", "h", "h2", kNow)),
            base::ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store.UpdatePasswordHash(alice.id, "$argon2id$new", "", kNow)),
            base::ErrorCode::kInvalidArgument);
}

TYPED_TEST_P(StoreTest, SearchByHandlePrefix) {
  Store& store = this->store();
  User me = Create(store, "ann");
  Create(store, "Anna");
  Create(store, "annabel");
  Create(store, "bob");
  Create(store, "ANDY");

  auto found = store.SearchUsersByHandlePrefix("AN", me.id, 20);
  ASSERT_TRUE(found) << MessageOf(found);
  // Ordered by lower-cased handle; never the searcher.
  EXPECT_EQ(Handles(*found), (std::vector<std::string>{"ANDY", "Anna", "annabel"}));
  EXPECT_EQ(found->front().display_name, "Name of ANDY");

  auto limited = store.SearchUsersByHandlePrefix("an", me.id, 2);
  EXPECT_EQ(Handles(*limited), (std::vector<std::string>{"ANDY", "Anna"}));
  auto with_me = store.SearchUsersByHandlePrefix("ann", "", 20);
  EXPECT_EQ(Handles(*with_me), (std::vector<std::string>{"ann", "Anna", "annabel"}));
  EXPECT_TRUE(store.SearchUsersByHandlePrefix("", me.id, 20)->empty());
  EXPECT_TRUE(store.SearchUsersByHandlePrefix("zzz", me.id, 20)->empty());
  EXPECT_EQ(CodeOf(store.SearchUsersByHandlePrefix("a", me.id, 0)),
            base::ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(store.SearchUsersByHandlePrefix("a", me.id, kMaxPageSize + 1)),
            base::ErrorCode::kInvalidArgument);
}

TYPED_TEST_P(StoreTest, SearchTreatsLikeWildcardsLiterally) {
  Store& store = this->store();
  for (const char* handle : {"a_b", "axb", "a%c", "abc", "a!b", "a!%", "%pct", "_under", "a\\b"}) {
    Create(store, handle);
  }
  auto search = [&](std::string_view prefix) {
    auto found = store.SearchUsersByHandlePrefix(prefix, "", 50);
    EXPECT_TRUE(found) << MessageOf(found);
    return found ? Handles(*found) : std::vector<std::string>{};
  };
  EXPECT_EQ(search("a_"), (std::vector<std::string>{"a_b"}));
  EXPECT_EQ(search("a%"), (std::vector<std::string>{"a%c"}));
  EXPECT_EQ(search("%"), (std::vector<std::string>{"%pct"}));
  EXPECT_EQ(search("_"), (std::vector<std::string>{"_under"}));
  EXPECT_EQ(search("a!"), (std::vector<std::string>{"a!%", "a!b"}));
  EXPECT_EQ(search("a!%"), (std::vector<std::string>{"a!%"}));
  EXPECT_EQ(search("a\\"), (std::vector<std::string>{"a\\b"}));
  EXPECT_EQ(search("a"),
            (std::vector<std::string>{"a!%", "a!b", "a%c", "a\\b", "a_b", "abc", "axb"}));
}

TYPED_TEST_P(StoreTest, InjectionPayloadsAreStoredAsData) {
  Store& store = this->store();
  User peer = Create(store, "peer");
  int n = 0;
  for (const std::string& payload : InjectionPayloads()) {
    SCOPED_TRACE(payload);
    NewUser user;
    user.email = payload + std::to_string(n) + "@x";
    user.handle = payload + std::to_string(n);
    user.display_name = payload;
    user.password_hash = payload;
    user.now_ms = kNow;
    ++n;
    auto created = store.CreateUser(user);
    ASSERT_TRUE(created) << MessageOf(created);
    auto by_handle = store.GetUserByHandle(user.handle);
    ASSERT_TRUE(by_handle) << MessageOf(by_handle);
    EXPECT_EQ(by_handle->handle, user.handle);
    EXPECT_EQ(by_handle->display_name, payload);
    EXPECT_EQ(by_handle->password_hash, payload);
    auto by_email = store.GetUserByEmail(user.email);
    ASSERT_TRUE(by_email);
    EXPECT_EQ(by_email->email, user.email);

    auto searched = store.SearchUsersByHandlePrefix(user.handle, "", 10);
    ASSERT_TRUE(searched);
    ASSERT_EQ(searched->size(), 1u);
    EXPECT_EQ(searched->front().handle, user.handle);

    auto updated = store.UpdateProfile(created->id, {.display_name = payload + "!"}, kNow);
    ASSERT_TRUE(updated);
    EXPECT_EQ(updated->display_name, payload + "!");

    auto synced = store.ReplaceContacts(peer.id, {}, std::vector<std::string>{user.handle}, kNow);
    ASSERT_TRUE(synced) << MessageOf(synced);
    ASSERT_EQ(synced->contacts.size(), 1u);
    EXPECT_EQ(synced->contacts.front().user.handle, user.handle);
    EXPECT_TRUE(synced->not_found.empty());

    Call call = MakeCall("call" + std::to_string(n), peer, *created, kNow + n);
    call.end_reason = payload.substr(0, kMaxLabelBytes);
    call.caller_ice = IceReport{payload.substr(0, kMaxLabelBytes),
                                payload.substr(0, 10),
                                payload.substr(0, 5),
                                payload.substr(0, 3),
                                7,
                                kNow,
                                payload.substr(0, 5)};
    ASSERT_TRUE(store.InsertCall(call));
    auto read = store.GetCall(call.id);
    ASSERT_TRUE(read);
    EXPECT_EQ(*read, call);

    // Ids are not free text: a payload there is refused, not run.
    NewUser bad_id = MakeUser("h" + std::to_string(n));
    bad_id.id = payload;
    EXPECT_EQ(CodeOf(store.CreateUser(bad_id)), base::ErrorCode::kInvalidArgument);
    EXPECT_EQ(CodeOf(store.GetUserById(payload)), base::ErrorCode::kNotFound);
  }
  // Every table is still there and whole.
  EXPECT_TRUE(store.GetUserById(peer.id));
  EXPECT_EQ(store.CallHistory({.user_id = peer.id, .limit = 100})->entries.size(),
            InjectionPayloads().size());
  EXPECT_EQ(store.ListContacts(peer.id)->size(), 1u);
}

// ---------------------------------------------------------------- refresh tokens

inline RefreshToken MakeToken(const std::string& hash, const User& user, const std::string& family,
                              int64_t expires_at = kNow + 3'600'000) {
  RefreshToken token;
  token.token_hash = hash;
  token.user_id = user.id;
  token.family_id = family;
  token.created_at_ms = kNow;
  token.expires_at_ms = expires_at;
  return token;
}

TYPED_TEST_P(StoreTest, InsertAndFindRefreshToken) {
  Store& store = this->store();
  User alice = Create(store, "alice");
  ASSERT_TRUE(store.InsertRefreshToken(MakeToken("hash1", alice, "fam1")));
  auto found = store.FindRefreshToken("hash1");
  ASSERT_TRUE(found) << MessageOf(found);
  EXPECT_EQ(found->user_id, alice.id);
  EXPECT_EQ(found->family_id, "fam1");
  EXPECT_EQ(found->replaced_by, "");
  EXPECT_EQ(found->created_at_ms, kNow);
  EXPECT_EQ(found->expires_at_ms, kNow + 3'600'000);
  EXPECT_FALSE(found->revoked_at_ms);

  auto duplicate = store.InsertRefreshToken(MakeToken("hash1", alice, "fam2"));
  ASSERT_EQ(CodeOf(duplicate), base::ErrorCode::kAlreadyExists);
  EXPECT_EQ(duplicate.error().message, kIdTaken);
  User ghost;
  ghost.id = "ghost";
  EXPECT_EQ(CodeOf(store.InsertRefreshToken(MakeToken("hash2", ghost, "fam2"))),
            base::ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store.FindRefreshToken("nope")), base::ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store.InsertRefreshToken(MakeToken("bad hash", alice, "f"))),
            base::ErrorCode::kInvalidArgument);
}

// Registration: the account and its first login commit together or not at
// all.
TYPED_TEST_P(StoreTest, CreateUserWithItsFirstRefreshToken) {
  Store& store = this->store();
  User alice = Create(store, "alice");
  ASSERT_TRUE(store.InsertRefreshToken(MakeToken("taken", alice, "famA")));

  NewUser bob = MakeUser("bob");
  bob.refresh_token = MakeToken("bob1", User{}, "famB");  // user_id: the new user's
  auto created = store.CreateUser(bob);
  ASSERT_TRUE(created) << MessageOf(created);
  auto token = store.FindRefreshToken("bob1");
  ASSERT_TRUE(token) << MessageOf(token);
  EXPECT_EQ(token->user_id, created->id);
  EXPECT_EQ(token->family_id, "famB");

  // A refused token leaves no account, a refused account no token.
  NewUser carol = MakeUser("carol");
  carol.refresh_token = MakeToken("taken", User{}, "famC");
  auto refused = store.CreateUser(carol);
  ASSERT_EQ(CodeOf(refused), base::ErrorCode::kAlreadyExists);
  EXPECT_EQ(refused.error().message, kIdTaken);
  EXPECT_EQ(CodeOf(store.GetUserByEmail(carol.email)), base::ErrorCode::kNotFound);
  NewUser again = MakeUser("bob");
  again.refresh_token = MakeToken("bob2", User{}, "famD");
  EXPECT_EQ(CodeOf(store.CreateUser(again)), base::ErrorCode::kAlreadyExists);
  EXPECT_EQ(CodeOf(store.FindRefreshToken("bob2")), base::ErrorCode::kNotFound);
  carol.refresh_token = MakeToken("bad hash", User{}, "famC");
  EXPECT_EQ(CodeOf(store.CreateUser(carol)), base::ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(store.GetUserByEmail(carol.email)), base::ErrorCode::kNotFound);
}

TYPED_TEST_P(StoreTest, RotateRefreshTokenAndDetectReuse) {
  Store& store = this->store();
  User alice = Create(store, "alice");
  ASSERT_TRUE(store.InsertRefreshToken(MakeToken("t1", alice, "famA")));
  ASSERT_TRUE(store.InsertRefreshToken(MakeToken("other", alice, "famB")));

  auto first = store.RotateRefreshToken("t1", "t2", kNow + 7'200'000, kNow + 10);
  ASSERT_TRUE(first) << MessageOf(first);
  EXPECT_EQ(first->outcome, RotateOutcome::kRotated);
  EXPECT_EQ(first->issued.token_hash, "t2");
  EXPECT_EQ(first->issued.user_id, alice.id);
  EXPECT_EQ(first->issued.family_id, "famA");
  EXPECT_EQ(first->previous.user_id, alice.id);
  auto t1 = store.FindRefreshToken("t1");
  EXPECT_EQ(t1->revoked_at_ms, kNow + 10);
  EXPECT_EQ(t1->replaced_by, "t2");
  auto t2 = store.FindRefreshToken("t2");
  EXPECT_FALSE(t2->revoked_at_ms);
  EXPECT_EQ(t2->created_at_ms, kNow + 10);
  EXPECT_EQ(t2->expires_at_ms, kNow + 7'200'000);

  auto second = store.RotateRefreshToken("t2", "t3", kNow + 7'200'000, kNow + 20);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->outcome, RotateOutcome::kRotated);

  // t1 again: stolen. The whole family dies, the other login lives.
  auto reuse = store.RotateRefreshToken("t1", "t4", kNow + 7'200'000, kNow + 30);
  ASSERT_TRUE(reuse) << MessageOf(reuse);
  EXPECT_EQ(reuse->outcome, RotateOutcome::kReused);
  EXPECT_EQ(reuse->previous.user_id, alice.id);
  EXPECT_EQ(store.FindRefreshToken("t3")->revoked_at_ms, kNow + 30);
  EXPECT_EQ(CodeOf(store.FindRefreshToken("t4")), base::ErrorCode::kNotFound);
  EXPECT_FALSE(store.FindRefreshToken("other")->revoked_at_ms);
  // t3 was revoked with its family, not rotated.
  EXPECT_EQ(store.RotateRefreshToken("t3", "t5", kNow + 1, kNow + 40)->outcome,
            RotateOutcome::kRevoked);

  EXPECT_EQ(store.RotateRefreshToken("unknown", "t6", kNow, kNow)->outcome,
            RotateOutcome::kNotFound);
  EXPECT_EQ(store.RotateRefreshToken("bad hash!", "t6", kNow, kNow)->outcome,
            RotateOutcome::kNotFound);
  EXPECT_EQ(CodeOf(store.RotateRefreshToken("other", "bad hash!", kNow, kNow)),
            base::ErrorCode::kInvalidArgument);
  // Rotating to an existing hash fails and leaves the old token live.
  EXPECT_EQ(CodeOf(store.RotateRefreshToken("other", "t1", kNow + 1, kNow + 50)),
            base::ErrorCode::kAlreadyExists);
  EXPECT_FALSE(store.FindRefreshToken("other")->revoked_at_ms);
}

TYPED_TEST_P(StoreTest, RotateExpiredOrRevokedToken) {
  Store& store = this->store();
  User alice = Create(store, "alice");
  ASSERT_TRUE(store.InsertRefreshToken(MakeToken("old", alice, "f1", kNow + 100)));
  EXPECT_EQ(store.RotateRefreshToken("old", "new", kNow + 999, kNow + 100)->outcome,
            RotateOutcome::kExpired);
  EXPECT_FALSE(store.FindRefreshToken("old")->revoked_at_ms);
  EXPECT_EQ(CodeOf(store.FindRefreshToken("new")), base::ErrorCode::kNotFound);

  ASSERT_TRUE(store.InsertRefreshToken(MakeToken("a", alice, "f2")));
  ASSERT_TRUE(store.InsertRefreshToken(MakeToken("b", alice, "f2")));
  EXPECT_EQ(*store.RevokeRefreshToken("a", kNow + 1), true);
  EXPECT_EQ(*store.RevokeRefreshToken("a", kNow + 2), false);
  EXPECT_EQ(store.RotateRefreshToken("a", "c", kNow + 999, kNow + 3)->outcome,
            RotateOutcome::kRevoked);
  EXPECT_EQ(store.FindRefreshToken("b")->revoked_at_ms, kNow + 3);
}

TYPED_TEST_P(StoreTest, RevokeAllAndPurge) {
  Store& store = this->store();
  User alice = Create(store, "alice");
  User bob = Create(store, "bob");
  ASSERT_TRUE(store.InsertRefreshToken(MakeToken("a1", alice, "f1", kNow + 10)));
  ASSERT_TRUE(store.InsertRefreshToken(MakeToken("a2", alice, "f2", kNow + 20)));
  ASSERT_TRUE(store.InsertRefreshToken(MakeToken("b1", bob, "f3", kNow + 30)));
  EXPECT_EQ(*store.RevokeRefreshToken("a1", kNow), true);
  EXPECT_EQ(*store.RevokeAllRefreshTokens(alice.id, kNow + 1), 1);
  EXPECT_EQ(*store.RevokeAllRefreshTokens(alice.id, kNow + 2), 0);
  EXPECT_EQ(store.FindRefreshToken("a1")->revoked_at_ms, kNow);
  EXPECT_EQ(store.FindRefreshToken("a2")->revoked_at_ms, kNow + 1);
  EXPECT_FALSE(store.FindRefreshToken("b1")->revoked_at_ms);

  // In batches, the oldest first.
  EXPECT_EQ(*store.PurgeExpiredRefreshTokens(kNow + 20, 1), 1);
  EXPECT_EQ(CodeOf(store.FindRefreshToken("a1")), base::ErrorCode::kNotFound);
  EXPECT_TRUE(store.FindRefreshToken("a2"));
  EXPECT_EQ(*store.PurgeExpiredRefreshTokens(kNow + 20, 100), 1);
  EXPECT_EQ(CodeOf(store.FindRefreshToken("a2")), base::ErrorCode::kNotFound);
  EXPECT_TRUE(store.FindRefreshToken("b1"));
  EXPECT_EQ(*store.PurgeExpiredRefreshTokens(kNow + 20, 100), 0);
  EXPECT_FALSE(store.PurgeExpiredRefreshTokens(kNow + 20, 0).has_value());
}

TYPED_TEST_P(StoreTest, ListEndedLogins) {
  Store& store = this->store();
  User alice = Create(store, "alice");
  User bob = Create(store, "bob");
  // f1: rotated once, then logged out at +50. f2: rotated only (live).
  // f3: revoked long ago. f4: bob's, reuse detected at +70.
  ASSERT_TRUE(store.InsertRefreshToken(MakeToken("a1", alice, "f1")));
  ASSERT_TRUE(store.InsertRefreshToken(MakeToken("a2", alice, "f2")));
  ASSERT_TRUE(store.InsertRefreshToken(MakeToken("a3", alice, "f3")));
  ASSERT_TRUE(store.InsertRefreshToken(MakeToken("b1", bob, "f4")));
  ASSERT_EQ(store.RotateRefreshToken("a1", "a1b", kNow + 99'999, kNow + 10)->outcome,
            RotateOutcome::kRotated);
  ASSERT_EQ(store.RotateRefreshToken("a2", "a2b", kNow + 99'999, kNow + 20)->outcome,
            RotateOutcome::kRotated);
  ASSERT_EQ(*store.RevokeRefreshToken("a3", kNow - 1000), true);
  ASSERT_EQ(*store.RevokeRefreshToken("a1b", kNow + 50), true);
  ASSERT_EQ(store.RotateRefreshToken("b1", "b1b", kNow + 99'999, kNow + 60)->outcome,
            RotateOutcome::kRotated);
  ASSERT_EQ(store.RotateRefreshToken("b1", "b1c", kNow + 99'999, kNow + 70)->outcome,
            RotateOutcome::kReused);

  auto ended = store.ListEndedLogins(kNow);
  ASSERT_TRUE(ended) << MessageOf(ended);
  std::vector<std::tuple<std::string, std::string, int64_t>> got;
  for (const EndedLogin& login : *ended) {
    got.emplace_back(login.family_id, login.user_id, login.ended_at_ms);
  }
  std::sort(got.begin(), got.end());
  const std::vector<std::tuple<std::string, std::string, int64_t>> want = {
      {"f1", alice.id, kNow + 50}, {"f4", bob.id, kNow + 70}};
  EXPECT_EQ(got, want);
  EXPECT_EQ(store.ListEndedLogins(kNow + 50)->size(), 1u);
  EXPECT_TRUE(store.ListEndedLogins(kNow + 70)->empty());
  // Revoking everything of a user (password change) ends f2 as well.
  ASSERT_EQ(*store.RevokeAllRefreshTokens(alice.id, kNow + 80), 1);
  auto after = store.ListEndedLogins(kNow + 70);
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ(after->front().family_id, "f2");
  EXPECT_EQ(after->front().ended_at_ms, kNow + 80);
}

TYPED_TEST_P(StoreTest, ChangePasswordRevokesTheSessionsTogether) {
  Store& store = this->store();
  User alice = Create(store, "alice");
  User bob = Create(store, "bob");
  ASSERT_TRUE(store.InsertRefreshToken(MakeToken("a1", alice, "f1", kNow + 30)));
  ASSERT_TRUE(store.InsertRefreshToken(MakeToken("a2", alice, "f2", kNow + 30)));
  ASSERT_TRUE(store.InsertRefreshToken(MakeToken("b1", bob, "f3", kNow + 30)));
  EXPECT_EQ(*store.ChangePassword(alice.id, "$argon2id$changed", kNow + 1, nullptr), 2);
  EXPECT_EQ(store.GetUserById(alice.id)->password_hash, "$argon2id$changed");
  EXPECT_EQ(store.GetUserById(alice.id)->updated_at_ms, kNow + 1);
  EXPECT_EQ(store.FindRefreshToken("a1")->revoked_at_ms, kNow + 1);
  EXPECT_EQ(store.FindRefreshToken("a2")->revoked_at_ms, kNow + 1);
  EXPECT_FALSE(store.FindRefreshToken("b1")->revoked_at_ms);
  EXPECT_EQ(*store.ChangePassword(alice.id, "$argon2id$again", kNow + 2, nullptr), 0);
  // Refused as a whole: nothing changes.
  EXPECT_EQ(CodeOf(store.ChangePassword("nobody", "h", kNow, nullptr)), base::ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store.ChangePassword(bob.id, "", kNow, nullptr)),
            base::ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(store.ChangePassword("bad id", "h", kNow, nullptr)),
            base::ErrorCode::kInvalidArgument);
  EXPECT_FALSE(store.FindRefreshToken("b1")->revoked_at_ms);

  // The login of the device that changed it goes in with the change, live.
  const RefreshToken mine = MakeToken("a3", alice, "f4", kNow + 30);
  EXPECT_EQ(*store.ChangePassword(alice.id, "$argon2id$third", kNow + 3, &mine), 0);
  EXPECT_FALSE(store.FindRefreshToken("a3")->revoked_at_ms);
  EXPECT_EQ(store.GetUserById(alice.id)->password_hash, "$argon2id$third");
  // A token that cannot go in leaves the password and the sessions as they were.
  const RefreshToken taken = MakeToken("b1", alice, "f5", kNow + 30);
  EXPECT_EQ(CodeOf(store.ChangePassword(alice.id, "$argon2id$fourth", kNow + 4, &taken)),
            base::ErrorCode::kAlreadyExists);
  EXPECT_EQ(store.GetUserById(alice.id)->password_hash, "$argon2id$third");
  EXPECT_FALSE(store.FindRefreshToken("a3")->revoked_at_ms);
  const RefreshToken bobs = MakeToken("b2", bob, "f6", kNow + 30);
  EXPECT_EQ(CodeOf(store.ChangePassword(alice.id, "$argon2id$fourth", kNow + 4, &bobs)),
            base::ErrorCode::kInvalidArgument);
}

// A login's token goes in only while the password it checked is the user's.
TYPED_TEST_P(StoreTest, ALoginTokenNeedsThePasswordTheLoginChecked) {
  Store& store = this->store();
  User alice = Create(store, "alice");
  const std::string checked = alice.password_hash;
  ASSERT_TRUE(store.InsertLoginRefreshToken(MakeToken("l1", alice, "f1", kNow + 30), checked));
  EXPECT_EQ(store.FindRefreshToken("l1")->user_id, alice.id);
  ASSERT_TRUE(store.ChangePassword(alice.id, "$argon2id$changed", kNow + 1, nullptr));
  EXPECT_EQ(store.FindRefreshToken("l1")->revoked_at_ms, kNow + 1);
  auto late = store.InsertLoginRefreshToken(MakeToken("l2", alice, "f2", kNow + 30), checked);
  EXPECT_EQ(CodeOf(late), base::ErrorCode::kPermissionDenied);
  EXPECT_EQ(late.error().message, "password changed");
  EXPECT_EQ(CodeOf(store.FindRefreshToken("l2")), base::ErrorCode::kNotFound);
  EXPECT_TRUE(
      store.InsertLoginRefreshToken(MakeToken("l3", alice, "f3", kNow + 30), "$argon2id$changed"));
  User ghost;
  ghost.id = "ghost";
  EXPECT_EQ(CodeOf(store.InsertLoginRefreshToken(MakeToken("l4", ghost, "f4"), checked)),
            base::ErrorCode::kPermissionDenied);
}

TYPED_TEST_P(StoreTest, ConcurrentRotationsOfOneTokenRotateOnce) {
  Store& store = this->store();
  User alice = Create(store, "alice");
  ASSERT_TRUE(store.InsertRefreshToken(MakeToken("shared", alice, "fam")));
  constexpr int kThreads = 6;
  std::vector<RotateOutcome> outcomes(kThreads);
  std::vector<std::string> errors(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto result =
          store.RotateRefreshToken("shared", "next" + std::to_string(i), kNow + 99'999, kNow + 1);
      if (result) {
        outcomes[i] = result->outcome;
      } else {
        errors[i] = result.error().message;
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  int rotated = 0;
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_EQ(errors[i], "");
    if (errors[i].empty() && outcomes[i] == RotateOutcome::kRotated) {
      ++rotated;
    } else if (errors[i].empty()) {
      EXPECT_EQ(outcomes[i], RotateOutcome::kReused);
    }
  }
  EXPECT_EQ(rotated, 1);
}

// A password change racing sign-ins that keep refreshing: every token ever
// issued ends revoked. On MariaDB (read committed) a rotation may insert its
// new token while the change's revoke runs (RevokeUserRefreshTokens).
TYPED_TEST_P(StoreTest, RotationsRacingAPasswordChangeLeaveNoLiveToken) {
  Store& store = this->store();
  User alice = Create(store, "alice");
  constexpr int kThreads = 4;
  constexpr int kMaxRotations = 40;
  std::vector<std::vector<std::string>> issued(kThreads);
  std::vector<std::string> errors(kThreads);
  for (int i = 0; i < kThreads; ++i) {
    issued[i].push_back("t" + std::to_string(i) + "-0");
    ASSERT_TRUE(store.InsertRefreshToken(
        MakeToken(issued[i].back(), alice, "fam" + std::to_string(i), kNow + 99'999)));
  }
  std::atomic<int> rotations{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      for (int n = 1; n <= kMaxRotations; ++n) {
        std::string next = "t" + std::to_string(i) + "-" + std::to_string(n);
        auto result = store.RotateRefreshToken(issued[i].back(), next, kNow + 99'999, kNow + 1);
        if (!result) {
          errors[i] = result.error().message;
          return;
        }
        if (result->outcome != RotateOutcome::kRotated) {
          return;  // the change revoked this login
        }
        issued[i].push_back(std::move(next));
        ++rotations;
      }
    });
  }
  // Mid-way for most runs; any order must end the same.
  while (rotations.load() < kThreads * 2) {
    std::this_thread::yield();
  }
  auto changed = store.ChangePassword(alice.id, "$argon2id$changed", kNow + 2, nullptr);
  for (std::thread& t : threads) {
    t.join();
  }
  ASSERT_TRUE(changed) << MessageOf(changed);
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_EQ(errors[i], "");
    for (const std::string& hash : issued[i]) {
      auto token = store.FindRefreshToken(hash);
      ASSERT_TRUE(token) << MessageOf(token);
      EXPECT_TRUE(token->revoked_at_ms.has_value()) << hash << " is still live";
    }
  }
}

// ---------------------------------------------------------------- contacts

TYPED_TEST_P(StoreTest, AddListRemoveContacts) {
  Store& store = this->store();
  User me = Create(store, "me");
  User zed = Create(store, "Zed");
  User amy = Create(store, "amy");

  EXPECT_EQ(*store.AddContact(me.id, zed.id, kNow + 1), true);
  EXPECT_EQ(*store.AddContact(me.id, amy.id, kNow + 2), true);
  EXPECT_EQ(*store.AddContact(me.id, zed.id, kNow + 3), false);
  EXPECT_EQ(CodeOf(store.AddContact(me.id, me.id, kNow)), base::ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(store.AddContact(me.id, "ghost", kNow)), base::ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store.AddContact("ghost", me.id, kNow)), base::ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store.AddContact(me.id, "bad id", kNow)), base::ErrorCode::kNotFound);

  auto listed = store.ListContacts(me.id);
  ASSERT_TRUE(listed) << MessageOf(listed);
  ASSERT_EQ(listed->size(), 2u);
  EXPECT_EQ((*listed)[0].user, (UserSummary{amy.id, "amy", "Name of amy"}));
  EXPECT_EQ((*listed)[0].added_at_ms, kNow + 2);
  EXPECT_EQ((*listed)[1].user, (UserSummary{zed.id, "Zed", "Name of Zed"}));
  EXPECT_EQ((*listed)[1].added_at_ms, kNow + 1);
  EXPECT_TRUE(store.ListContacts(zed.id)->empty());  // not symmetric

  EXPECT_EQ(*store.RemoveContact(me.id, zed.id), true);
  EXPECT_EQ(*store.RemoveContact(me.id, zed.id), false);
  EXPECT_EQ(Handles(*store.ListContacts(me.id)), (std::vector<std::string>{"amy"}));
  // A contact's new profile shows in the list.
  ASSERT_TRUE(store.UpdateProfile(amy.id, {.display_name = "Amy!", .handle = "Amelia"}, kNow));
  EXPECT_EQ(store.ListContacts(me.id)->front().user, (UserSummary{amy.id, "Amelia", "Amy!"}));
}

TYPED_TEST_P(StoreTest, ReplaceContactsSyncsTheWholeList) {
  Store& store = this->store();
  User me = Create(store, "me");
  User a = Create(store, "alpha");
  User b = Create(store, "Bravo");
  User c = Create(store, "charlie");
  User d = Create(store, "delta");
  ASSERT_TRUE(store.AddContact(me.id, a.id, kNow + 1));
  ASSERT_TRUE(store.AddContact(me.id, b.id, kNow + 2));

  const std::vector<std::string> ids = {a.id, "ghost", "not an id", me.id, c.id, c.id, "ghost"};
  const std::vector<std::string> handles = {
      "BRAVO", "CHARLIE", "nobody", "ME", "", std::string(200, 'x'), "NoBody"};
  auto synced = store.ReplaceContacts(me.id, ids, handles, kNow + 50);
  ASSERT_TRUE(synced) << MessageOf(synced);
  EXPECT_EQ(Handles(synced->contacts), (std::vector<std::string>{"alpha", "Bravo", "charlie"}));
  EXPECT_EQ(synced->contacts[0].added_at_ms, kNow + 1);  // kept
  EXPECT_EQ(synced->contacts[1].added_at_ms, kNow + 2);  // kept
  EXPECT_EQ(synced->contacts[2].added_at_ms, kNow + 50);
  // Entries that name nobody, once each (handles ignoring case); the owner
  // names a user, so it is skipped, not unknown.
  EXPECT_EQ(synced->not_found,
            (std::vector<std::string>{"ghost", "not an id", "nobody", "", std::string(200, 'x')}));

  auto narrowed = store.ReplaceContacts(me.id, std::vector<std::string>{d.id},
                                        std::vector<std::string>{"alpha"}, kNow + 60);
  ASSERT_TRUE(narrowed);
  EXPECT_EQ(Handles(narrowed->contacts), (std::vector<std::string>{"alpha", "delta"}));
  EXPECT_EQ(Handles(*store.ListContacts(me.id)), (std::vector<std::string>{"alpha", "delta"}));

  auto emptied = store.ReplaceContacts(me.id, {}, {}, kNow + 70);
  ASSERT_TRUE(emptied);
  EXPECT_TRUE(emptied->contacts.empty());
  EXPECT_TRUE(store.ListContacts(me.id)->empty());

  EXPECT_EQ(CodeOf(store.ReplaceContacts("ghost", {}, {}, kNow)), base::ErrorCode::kNotFound);
  const std::vector<std::string> too_many(kMaxPageSize + 1, a.id);
  EXPECT_EQ(CodeOf(store.ReplaceContacts(me.id, too_many, {}, kNow)),
            base::ErrorCode::kInvalidArgument);
}

// ---------------------------------------------------------------- calls

TYPED_TEST_P(StoreTest, InsertUpdateAndReadCall) {
  Store& store = this->store();
  User alice = Create(store, "alice");
  User bob = Create(store, "bob");
  Call call = MakeCall("c1", alice, bob, kNow, CallStatus::kRinging, CallType::kVideo);
  ASSERT_TRUE(store.InsertCall(call));
  auto read = store.GetCall("c1");
  ASSERT_TRUE(read) << MessageOf(read);
  EXPECT_EQ(*read, call);
  EXPECT_FALSE(read->answered_at_ms);
  EXPECT_FALSE(read->caller_ice);

  ASSERT_TRUE(store.UpdateCallState({"c1", CallStatus::kActive, "", kNow + 3000, {}, 0}));
  ASSERT_TRUE(store.RecordIceReport(
      {"c1", CallSide::kCaller, {"connected", "relay", "srflx", "udp", 42, kNow + 4000}}));
  ASSERT_TRUE(store.RecordIceReport(
      {"c1",
       CallSide::kCallee,
       {"failed", "host", "", "", std::nullopt, kNow + 4100, "turn_unreachable"}}));
  ASSERT_TRUE(store.UpdateCallState(
      {"c1", CallStatus::kCompleted, "hangup", kNow + 3000, kNow + 93000, 90}));
  // Writing the same state again is harmless.
  ASSERT_TRUE(store.UpdateCallState(
      {"c1", CallStatus::kCompleted, "hangup", kNow + 3000, kNow + 93000, 90}));

  call.status = CallStatus::kCompleted;
  call.end_reason = "hangup";
  call.answered_at_ms = kNow + 3000;
  call.ended_at_ms = kNow + 93000;
  call.duration_seconds = 90;
  call.caller_ice = IceReport{"connected", "relay", "srflx", "udp", 42, kNow + 4000};
  call.callee_ice =
      IceReport{"failed", "host", "", "", std::nullopt, kNow + 4100, "turn_unreachable"};
  EXPECT_EQ(*store.GetCall("c1"), call);

  // An ended call keeps its end: another one is refused, the row unchanged
  // (a coordinator woken from a freeze after its successor ended the call).
  auto rewritten = store.UpdateCallState(
      {"c1", CallStatus::kFailed, "connection_lost", kNow + 3000, kNow + 500000, 497});
  EXPECT_EQ(CodeOf(rewritten), base::ErrorCode::kAlreadyExists);
  EXPECT_EQ(rewritten.error().message, "call already ended (completed, hangup); not rewritten");
  EXPECT_EQ(CodeOf(store.UpdateCallState({"c1", CallStatus::kActive, "", kNow + 3000, {}, 0})),
            base::ErrorCode::kAlreadyExists);
  EXPECT_EQ(*store.GetCall("c1"), call);
}

TYPED_TEST_P(StoreTest, CallWriteErrors) {
  Store& store = this->store();
  User alice = Create(store, "alice");
  User bob = Create(store, "bob");
  User ghost;
  ghost.id = "ghost";
  ASSERT_TRUE(store.InsertCall(MakeCall("c1", alice, bob, kNow)));
  auto duplicate = store.InsertCall(MakeCall("c1", bob, alice, kNow));
  ASSERT_EQ(CodeOf(duplicate), base::ErrorCode::kAlreadyExists);
  EXPECT_EQ(duplicate.error().message, kIdTaken);
  EXPECT_EQ(CodeOf(store.InsertCall(MakeCall("c2", alice, ghost, kNow))),
            base::ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store.GetCall("c2")), base::ErrorCode::kNotFound);
  EXPECT_TRUE(store.CallHistory({.user_id = alice.id})->entries.size() == 1);
  EXPECT_EQ(CodeOf(store.InsertCall(MakeCall("c3", alice, alice, kNow))),
            base::ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(store.InsertCall(MakeCall("bad id", alice, bob, kNow))),
            base::ErrorCode::kInvalidArgument);
  Call bad_type = MakeCall("c4", alice, bob, kNow);
  bad_type.type = static_cast<CallType>(9);
  EXPECT_EQ(CodeOf(store.InsertCall(bad_type)), base::ErrorCode::kInvalidArgument);
  Call long_reason = MakeCall("c5", alice, bob, kNow);
  long_reason.end_reason = std::string(kMaxLabelBytes + 1, 'r');
  EXPECT_EQ(CodeOf(store.InsertCall(long_reason)), base::ErrorCode::kInvalidArgument);

  EXPECT_EQ(CodeOf(store.UpdateCallState({"nope", CallStatus::kMissed, "timeout", {}, kNow, 0})),
            base::ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store.RecordIceReport({"nope", CallSide::kCallee, {"connected"}})),
            base::ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store.RecordIceReport({"c1", CallSide::kCallee, {""}})),
            base::ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(store.GetCall("bad id")), base::ErrorCode::kNotFound);
}

TYPED_TEST_P(StoreTest, CallHistoryFiltersAndPages) {
  Store& store = this->store();
  User alice = Create(store, "alice");
  User bob = Create(store, "bob");
  User carol = Create(store, "carol");
  // Oldest first; ids chosen so equal times order by id descending.
  ASSERT_TRUE(store.InsertCall(MakeCall("c1", alice, bob, kNow + 1)));
  ASSERT_TRUE(store.InsertCall(
      MakeCall("c2", bob, alice, kNow + 2, CallStatus::kMissed, CallType::kVideo)));
  ASSERT_TRUE(store.InsertCall(MakeCall("c3", carol, alice, kNow + 3, CallStatus::kRejected)));
  ASSERT_TRUE(store.InsertCall(MakeCall("c4", alice, carol, kNow + 4, CallStatus::kMissed)));
  ASSERT_TRUE(store.InsertCall(MakeCall("c5", carol, alice, kNow + 5, CallStatus::kMissed)));
  ASSERT_TRUE(store.InsertCall(
      MakeCall("c6", alice, bob, kNow + 5, CallStatus::kCancelled, CallType::kVideo)));
  ASSERT_TRUE(store.InsertCall(MakeCall("c7", bob, carol, kNow + 6)));

  auto all = store.CallHistory({.user_id = alice.id});
  ASSERT_TRUE(all) << MessageOf(all);
  EXPECT_EQ(CallIds(*all), (std::vector<std::string>{"c6", "c5", "c4", "c3", "c2", "c1"}));
  EXPECT_FALSE(all->has_more);
  const HistoryEntry& c5 = all->entries[1];
  EXPECT_EQ(c5.direction, CallDirection::kIncoming);
  EXPECT_TRUE(c5.missed);
  EXPECT_EQ(c5.peer, (UserSummary{carol.id, "carol", "Name of carol"}));
  EXPECT_EQ(c5.call, MakeCall("c5", carol, alice, kNow + 5, CallStatus::kMissed));
  const HistoryEntry& c4 = all->entries[2];
  EXPECT_EQ(c4.direction, CallDirection::kOutgoing);
  EXPECT_FALSE(c4.missed);  // the caller did not miss it
  EXPECT_EQ(c4.peer.id, carol.id);
  EXPECT_EQ(all->entries[5].call.duration_seconds, 60);

  auto video = store.CallHistory({.user_id = alice.id, .type = CallType::kVideo});
  EXPECT_EQ(CallIds(*video), (std::vector<std::string>{"c6", "c2"}));
  auto incoming = store.CallHistory({.user_id = alice.id, .direction = CallDirection::kIncoming});
  EXPECT_EQ(CallIds(*incoming), (std::vector<std::string>{"c5", "c3", "c2"}));
  auto outgoing = store.CallHistory({.user_id = alice.id, .direction = CallDirection::kOutgoing});
  EXPECT_EQ(CallIds(*outgoing), (std::vector<std::string>{"c6", "c4", "c1"}));
  auto missed = store.CallHistory({.user_id = alice.id, .missed_only = true});
  EXPECT_EQ(CallIds(*missed), (std::vector<std::string>{"c5", "c2"}));
  auto missed_video =
      store.CallHistory({.user_id = alice.id, .type = CallType::kVideo, .missed_only = true});
  EXPECT_EQ(CallIds(*missed_video), (std::vector<std::string>{"c2"}));
  EXPECT_TRUE(
      store
          .CallHistory(
              {.user_id = alice.id, .direction = CallDirection::kOutgoing, .missed_only = true})
          ->entries.empty());
  auto missed_list = store.MissedCalls(alice.id, 20, 0);
  EXPECT_EQ(CallIds(*missed_list), (std::vector<std::string>{"c5", "c2"}));
  EXPECT_EQ(CallIds(*store.MissedCalls(carol.id, 20, 0)), (std::vector<std::string>{"c4"}));

  auto page1 = store.CallHistory({.user_id = alice.id, .limit = 4});
  EXPECT_EQ(CallIds(*page1), (std::vector<std::string>{"c6", "c5", "c4", "c3"}));
  EXPECT_TRUE(page1->has_more);
  auto page2 = store.CallHistory({.user_id = alice.id, .limit = 4, .skip = 4});
  EXPECT_EQ(CallIds(*page2), (std::vector<std::string>{"c2", "c1"}));
  EXPECT_FALSE(page2->has_more);
  auto exact = store.CallHistory({.user_id = alice.id, .limit = 3, .skip = 3});
  EXPECT_EQ(CallIds(*exact), (std::vector<std::string>{"c3", "c2", "c1"}));
  EXPECT_FALSE(exact->has_more);
  auto beyond = store.CallHistory({.user_id = alice.id, .limit = 3, .skip = 10});
  EXPECT_TRUE(beyond->entries.empty());
  EXPECT_FALSE(beyond->has_more);

  EXPECT_TRUE(store.CallHistory({.user_id = "stranger"})->entries.empty());
  EXPECT_EQ(CodeOf(store.CallHistory({.user_id = alice.id, .limit = 0})),
            base::ErrorCode::kInvalidArgument);
  EXPECT_EQ(CodeOf(store.CallHistory({.user_id = alice.id, .skip = -1})),
            base::ErrorCode::kInvalidArgument);
  EXPECT_TRUE(store.CallHistory({.user_id = "bad id"})->entries.empty());
}

TYPED_TEST_P(StoreTest, HideCallForOneUserOnly) {
  Store& store = this->store();
  User alice = Create(store, "alice");
  User bob = Create(store, "bob");
  User carol = Create(store, "carol");
  ASSERT_TRUE(store.InsertCall(MakeCall("c1", alice, bob, kNow + 1)));
  ASSERT_TRUE(store.InsertCall(MakeCall("c2", bob, alice, kNow + 2, CallStatus::kMissed)));
  ASSERT_TRUE(store.InsertCall(MakeCall("c3", alice, bob, kNow + 3)));

  ASSERT_TRUE(store.HideCall("c2", alice.id));
  ASSERT_TRUE(store.HideCall("c2", alice.id));  // twice is fine
  EXPECT_EQ(CallIds(*store.CallHistory({.user_id = alice.id})),
            (std::vector<std::string>{"c3", "c1"}));
  EXPECT_TRUE(store.MissedCalls(alice.id, 20, 0)->entries.empty());
  EXPECT_EQ(CallIds(*store.CallHistory({.user_id = bob.id})),
            (std::vector<std::string>{"c3", "c2", "c1"}));
  // Paging counts only visible calls.
  auto page = store.CallHistory({.user_id = alice.id, .limit = 1, .skip = 1});
  EXPECT_EQ(CallIds(*page), (std::vector<std::string>{"c1"}));
  EXPECT_FALSE(page->has_more);

  EXPECT_EQ(CodeOf(store.HideCall("c1", carol.id)), base::ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf(store.HideCall("nope", alice.id)), base::ErrorCode::kNotFound);
  EXPECT_TRUE(store.GetCall("c2"));  // the row itself stays
}

// The end EndUnfinishedCalls makes up for call `id`: `status`, reason
// server_restart, ended at `ended_at` (its answer or creation), duration 0.
inline void ExpectMadeUpEnd(Store& store, const std::string& id, CallStatus status,
                            int64_t ended_at) {
  auto call = store.GetCall(id);
  ASSERT_TRUE(call.has_value()) << id;
  EXPECT_EQ(call->status, status) << id;
  EXPECT_EQ(call->end_reason, "server_restart") << id;
  EXPECT_EQ(call->ended_at_ms, ended_at) << id;
  EXPECT_EQ(call->duration_seconds, 0) << id;
}

// At a start after a crash: calls left ringing or active are ended.
TYPED_TEST_P(StoreTest, EndUnfinishedCallsEndsRingingAndActiveOnes) {
  Store& store = this->store();
  User alice = Create(store, "alice");
  User bob = Create(store, "bob");
  ASSERT_TRUE(store.InsertCall(MakeCall("ringing", alice, bob, kNow + 1, CallStatus::kRinging)));
  Call active = MakeCall("active", alice, bob, kNow + 2, CallStatus::kActive);
  active.answered_at_ms = kNow + 5000;
  ASSERT_TRUE(store.InsertCall(active));
  ASSERT_TRUE(store.InsertCall(MakeCall("done", alice, bob, kNow + 3)));

  EXPECT_EQ(store.EndUnfinishedCalls(std::nullopt), 2);
  ExpectMadeUpEnd(store, "ringing", CallStatus::kMissed, kNow + 1);
  ExpectMadeUpEnd(store, "active", CallStatus::kFailed, kNow + 5000);
  EXPECT_EQ(store.GetCall("done")->status, CallStatus::kCompleted);
  EXPECT_EQ(store.GetCall("done")->end_reason, "hangup");
  EXPECT_EQ(store.EndUnfinishedCalls(std::nullopt), 0);
}

// Calls "active" (answered at kNow + 1000) and "ringing" (created at kNow + 1).
inline void InsertGoingCalls(Store& store, const User& caller, const User& callee) {
  Call active = MakeCall("active", caller, callee, kNow, CallStatus::kActive);
  active.answered_at_ms = kNow + 1000;
  ASSERT_TRUE(store.InsertCall(active));
  ASSERT_TRUE(
      store.InsertCall(MakeCall("ringing", caller, callee, kNow + 1, CallStatus::kRinging)));
}

// An end EndUnfinishedCalls made up gives way to the real one written late
// (a replaced coordinator's saved history); nothing else does.
TYPED_TEST_P(StoreTest, ARealEndReplacesAMadeUpOne) {
  Store& store = this->store();
  User alice = Create(store, "alice");
  User bob = Create(store, "bob");
  InsertGoingCalls(store, alice, bob);
  ASSERT_EQ(store.EndUnfinishedCalls(std::nullopt), 2);

  // A state that is not an end, or another made-up end, changes nothing.
  EXPECT_EQ(CodeOf(store.UpdateCallState({"active", CallStatus::kActive, "", kNow + 1000, {}, 0})),
            base::ErrorCode::kAlreadyExists);
  // (The same end again reads as a retried write: fine, and nothing changes.)
  EXPECT_TRUE(store.UpdateCallState(
      {"active", CallStatus::kFailed, "server_restart", kNow + 1000, kNow + 9000, 8}));
  EXPECT_EQ(store.GetCall("active")->duration_seconds, 0);
  // The call's own end replaces it, once.
  ASSERT_TRUE(store.UpdateCallState(
      {"active", CallStatus::kCompleted, "hangup", kNow + 1000, kNow + 6000, 5}));
  auto call = store.GetCall("active");
  EXPECT_EQ(call->status, CallStatus::kCompleted);
  EXPECT_EQ(call->end_reason, "hangup");
  EXPECT_EQ(call->ended_at_ms, kNow + 6000);
  EXPECT_EQ(call->duration_seconds, 5);
  EXPECT_EQ(CodeOf(store.UpdateCallState(
                {"active", CallStatus::kFailed, "connection_lost", kNow + 1000, kNow + 7000, 6})),
            base::ErrorCode::kAlreadyExists);
  EXPECT_EQ(store.GetCall("active")->end_reason, "hangup");
  // Also in a batch, as the recorder and the replay write.
  const std::vector<CallWrite> writes{
      CallStateUpdate{"ringing", CallStatus::kMissed, "timeout", {}, kNow + 30001, 0}};
  auto outcomes = store.ApplyCallWrites(writes);
  ASSERT_TRUE(outcomes);
  EXPECT_TRUE((*outcomes)[0]);
  EXPECT_EQ(store.GetCall("ringing")->end_reason, "timeout");
  EXPECT_EQ(store.GetCall("ringing")->ended_at_ms, kNow + 30001);
}

// The replay of a saved history file ends the calls it left going, by id,
// as EndUnfinishedCalls would, whoever wrote them; ended ones stay.
TYPED_TEST_P(StoreTest, EndUnfinishedCallsByIdEndsOnlyThose) {
  Store& store = this->store();
  User alice = Create(store, "alice");
  User bob = Create(store, "bob");
  InsertGoingCalls(store, alice, bob);
  ASSERT_TRUE(store.InsertCall(MakeCall("other", alice, bob, kNow + 2, CallStatus::kRinging)));
  ASSERT_TRUE(store.InsertCall(MakeCall("done", alice, bob, kNow + 3)));

  const std::vector<std::string> ids{"active", "ringing", "done", "nope"};
  EXPECT_EQ(store.EndUnfinishedCallsById(ids), 2);
  ExpectMadeUpEnd(store, "active", CallStatus::kFailed, kNow + 1000);
  ExpectMadeUpEnd(store, "ringing", CallStatus::kMissed, kNow + 1);
  EXPECT_EQ(store.GetCall("other")->status, CallStatus::kRinging);
  EXPECT_EQ(store.GetCall("done")->end_reason, "hangup");
  EXPECT_EQ(store.EndUnfinishedCallsById(ids), 0);
}

// A cluster's new coordinator ends only the calls created before it took
// over: its own new ones go on.
TYPED_TEST_P(StoreTest, EndUnfinishedCallsLeavesCallsCreatedAfterTheCutoff) {
  Store& store = this->store();
  User alice = Create(store, "alice");
  User bob = Create(store, "bob");
  ASSERT_TRUE(store.InsertCall(MakeCall("old", alice, bob, kNow + 1, CallStatus::kRinging)));
  ASSERT_TRUE(store.InsertCall(MakeCall("new", alice, bob, kNow + 10, CallStatus::kRinging)));

  EXPECT_EQ(store.EndUnfinishedCalls(kNow + 10), 1);
  EXPECT_EQ(store.GetCall("old")->status, CallStatus::kMissed);
  EXPECT_EQ(store.GetCall("new")->status, CallStatus::kRinging);
}

// Two services on one database (a node started with a mistyped
// cluster.name, or a single node beside a cluster): each ends only the
// unfinished calls it wrote, never the other's live ones.
TYPED_TEST_P(StoreTest, EndUnfinishedCallsLeavesAnotherClustersCalls) {
  Store& store = this->store();  // a single node's (cluster "")
  User alice = Create(store, "alice");
  User bob = Create(store, "bob");
  auto cluster = this->Reopen(this->Embedded());
  ASSERT_NE(cluster, nullptr);
  cluster->set_cluster("calls-eu");
  auto typo = this->Reopen(this->Embedded());
  ASSERT_NE(typo, nullptr);
  typo->set_cluster("calls-ue");
  ASSERT_TRUE(store.InsertCall(MakeCall("single", alice, bob, kNow + 1, CallStatus::kRinging)));
  Call live = MakeCall("live", alice, bob, kNow + 2, CallStatus::kActive);
  live.answered_at_ms = kNow + 3;
  ASSERT_TRUE(cluster->ApplyCallWrites(std::vector<CallWrite>{live}));

  EXPECT_EQ(typo->EndUnfinishedCalls(std::nullopt), 0);
  EXPECT_EQ(store.EndUnfinishedCalls(std::nullopt), 1);
  EXPECT_EQ(store.GetCall("single")->status, CallStatus::kMissed);
  EXPECT_EQ(store.GetCall("live")->status, CallStatus::kActive);
  EXPECT_EQ(cluster->EndUnfinishedCalls(std::nullopt), 1);
  EXPECT_EQ(store.GetCall("live")->status, CallStatus::kFailed);
}

TYPED_TEST_P(StoreTest, ApplyCallWritesCommitsABatch) {
  Store& store = this->store();
  User alice = Create(store, "alice");
  User bob = Create(store, "bob");
  ASSERT_TRUE(store.InsertCall(MakeCall("old", alice, bob, kNow)));

  std::vector<CallWrite> writes;
  writes.push_back(MakeCall("b1", alice, bob, kNow + 1, CallStatus::kRinging));
  writes.push_back(CallStateUpdate{"b1", CallStatus::kActive, "", kNow + 2, {}, 0});
  writes.push_back(
      IceUpdate{"b1", CallSide::kCallee, {"connected", "relay", "relay", "tcp", 80, 5}});
  writes.push_back(MakeCall("old", alice, bob, kNow));  // duplicate
  writes.push_back(CallStateUpdate{"ghost", CallStatus::kMissed, "timeout", {}, kNow, 0});
  writes.push_back(MakeCall("bad id", alice, bob, kNow));  // invalid
  writes.push_back(
      CallStateUpdate{"b1", CallStatus::kCompleted, "hangup", kNow + 2, kNow + 62, 60});
  writes.push_back(MakeCall("b2", bob, alice, kNow + 3, CallStatus::kMissed));

  auto outcomes = store.ApplyCallWrites(writes);
  ASSERT_TRUE(outcomes) << MessageOf(outcomes);
  ASSERT_EQ(outcomes->size(), writes.size());
  EXPECT_TRUE((*outcomes)[0]);
  EXPECT_TRUE((*outcomes)[1]);
  EXPECT_TRUE((*outcomes)[2]);
  EXPECT_EQ(CodeOf((*outcomes)[3]), base::ErrorCode::kAlreadyExists);
  EXPECT_EQ(CodeOf((*outcomes)[4]), base::ErrorCode::kNotFound);
  EXPECT_EQ(CodeOf((*outcomes)[5]), base::ErrorCode::kInvalidArgument);
  EXPECT_TRUE((*outcomes)[6]);
  EXPECT_TRUE((*outcomes)[7]);

  auto b1 = store.GetCall("b1");
  ASSERT_TRUE(b1);
  EXPECT_EQ(b1->status, CallStatus::kCompleted);
  EXPECT_EQ(b1->duration_seconds, 60);
  EXPECT_EQ(b1->callee_ice, (IceReport{"connected", "relay", "relay", "tcp", 80, 5}));
  EXPECT_EQ(CallIds(*store.CallHistory({.user_id = bob.id})),
            (std::vector<std::string>{"b2", "b1", "old"}));
  EXPECT_TRUE(store.ApplyCallWrites({})->empty());
}

TYPED_TEST_P(StoreTest, ConcurrentWritersConflictCleanly) {
  Store& store = this->store();
  constexpr int kThreads = 8;
  std::atomic<int> created{0};
  std::atomic<int> handle_taken{0};
  std::atomic<int> other{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      auto user = store.CreateUser(MakeUser("Racer", "racer" + std::to_string(i) + "@x"));
      if (user) {
        ++created;
      } else if (user.error().message == kHandleTaken) {
        ++handle_taken;
      } else {
        ++other;
        ADD_FAILURE() << user.error().message;
      }
    });
  }
  for (std::thread& t : threads) {
    t.join();
  }
  EXPECT_EQ(created.load(), 1);
  EXPECT_EQ(handle_taken.load(), kThreads - 1);
  EXPECT_EQ(other.load(), 0);
}

// ---------------------------------------------------------------- schema

TYPED_TEST_P(StoreTest, MigrateIsIdempotent) {
  Store& store = this->store();
  auto again = store.Migrate();
  ASSERT_TRUE(again) << MessageOf(again);
  EXPECT_EQ(*again, 0);
  auto state = store.GetSchemaState();
  ASSERT_TRUE(state);
  EXPECT_EQ(state->current_version, static_cast<int>(this->Embedded().size()));
  EXPECT_EQ(state->latest_version, state->current_version);
  EXPECT_TRUE(store.CheckSchema());
  EXPECT_TRUE(store.Ping());

  // Data survives another store opening and migrating the same database.
  User alice = Create(store, "alice");
  auto other = this->Reopen(this->Embedded());
  ASSERT_NE(other, nullptr);
  EXPECT_EQ(*other->Migrate(), 0);
  EXPECT_EQ(other->GetUserByHandle("ALICE")->id, alice.id);
}

TYPED_TEST_P(StoreTest, SchemaOfANewerTurnkeyIsRefused) {
  std::vector<Migration> newer(this->Embedded().begin(), this->Embedded().end());
  const int latest = newer.back().version;
  newer.push_back({latest + 1, "test_extra",
                   "CREATE TABLE test_extra (id INTEGER NOT NULL PRIMARY KEY);\n"
                   "-- a comment; with a semicolon\n"
                   "CREATE INDEX test_extra_id ON test_extra (id);"});
  newer.push_back({latest + 2, "test_extra_2", "CREATE TABLE test_extra_2 (id INTEGER);"});
  auto newer_store = this->Reopen(newer);
  ASSERT_NE(newer_store, nullptr);
  EXPECT_EQ(CodeOf(newer_store->CheckSchema()), base::ErrorCode::kInternal);  // behind
  auto applied = newer_store->Migrate();
  ASSERT_TRUE(applied) << MessageOf(applied);
  EXPECT_EQ(*applied, 2);
  EXPECT_TRUE(newer_store->CheckSchema());

  // The current binary meets that database: refused, with advice.
  Store& store = this->store();
  auto checked = store.CheckSchema();
  ASSERT_EQ(CodeOf(checked), base::ErrorCode::kInternal);
  // Named by its highest version, as GetSchemaState gives it.
  const std::string version = "schema version " + std::to_string(latest + 2) + " is newer";
  EXPECT_NE(checked.error().message.find(version), std::string::npos) << checked.error().message;
  auto migrated = store.Migrate();
  ASSERT_EQ(CodeOf(migrated), base::ErrorCode::kInternal);
  EXPECT_NE(migrated.error().message.find(version), std::string::npos);
  auto state = store.GetSchemaState();
  EXPECT_EQ(state->current_version, latest + 2);
  EXPECT_EQ(state->latest_version, latest);

  // A history that is not ours (same number, other name) is refused too.
  std::vector<Migration> renamed = newer;
  renamed.back().name = "something_else";
  auto foreign = this->Reopen(renamed);
  EXPECT_EQ(CodeOf(foreign->CheckSchema()), base::ErrorCode::kInternal);
  EXPECT_EQ(CodeOf(foreign->Migrate()), base::ErrorCode::kInternal);
}

TYPED_TEST_P(StoreTest, FailedMigrationIsNotRecorded) {
  std::vector<Migration> broken(this->Embedded().begin(), this->Embedded().end());
  const int latest = broken.back().version;
  broken.push_back({latest + 1, "broken", "CREATE TABLE half_done (id INTEGER);\nNOT SQL AT ALL"});
  auto broken_store = this->Reopen(broken);
  ASSERT_NE(broken_store, nullptr);
  auto failed = broken_store->Migrate();
  ASSERT_FALSE(failed);
  EXPECT_NE(failed.error().message.find("broken"), std::string::npos) << failed.error().message;
  EXPECT_EQ(broken_store->GetSchemaState()->current_version, latest);
  EXPECT_TRUE(this->store().CheckSchema());

  // Fixed (re-runnable, as MySQL migrations must be), it applies.
  std::vector<Migration> fixed = broken;
  fixed.back().sql = "CREATE TABLE IF NOT EXISTS half_done (id INTEGER)";
  auto fixed_store = this->Reopen(fixed);
  EXPECT_EQ(*fixed_store->Migrate(), 1);
  EXPECT_EQ(fixed_store->GetSchemaState()->current_version, latest + 1);
}

TYPED_TEST_P(StoreTest, FreshDatabaseIsBehind) {
  // SetUp looked before migrating the new database.
  ASSERT_TRUE(this->fresh_state_) << MessageOf(this->fresh_state_);
  EXPECT_EQ(this->fresh_state_->current_version, 0);
  EXPECT_EQ(this->fresh_state_->latest_version, static_cast<int>(this->Embedded().size()));
  ASSERT_EQ(CodeOf(this->fresh_check_), base::ErrorCode::kInternal);
  EXPECT_NE(this->fresh_check_.error().message.find("turnkey migrate"), std::string::npos)
      << this->fresh_check_.error().message;

  // A binary that knows no migrations at all sees this one as newer.
  auto bare = this->Reopen(std::span<const Migration>());
  ASSERT_NE(bare, nullptr);
  EXPECT_EQ(CodeOf(bare->CheckSchema()), base::ErrorCode::kInternal);
  EXPECT_EQ(bare->GetSchemaState()->latest_version, 0);
}

TYPED_TEST_P(StoreTest, ADatabaseOfAnotherProgramIsLeftAlone) {
  // A path or database name pointing at someone else's data: refused with
  // what is there, before anything of ours is added (no schema_migrations).
  TypeParam other;
  ASSERT_EQ(other.setup_error(), "");
  ASSERT_TRUE(other.RunSql("CREATE TABLE users (id INTEGER PRIMARY KEY, login TEXT)"));
  ASSERT_TRUE(other.RunSql("CREATE TABLE orders (id INTEGER PRIMARY KEY)"));
  auto store = other.Open(this->Embedded());
  ASSERT_TRUE(store) << store.error().message;
  auto migrated = (*store)->Migrate();
  ASSERT_EQ(CodeOf(migrated), base::ErrorCode::kInvalidArgument);
  EXPECT_NE(migrated.error().message.find("not turnkey's (orders, users)"), std::string::npos)
      << migrated.error().message;
  auto state = (*store)->GetSchemaState();
  ASSERT_TRUE(state) << MessageOf(state);
  EXPECT_EQ(state->current_version, 0);
  ASSERT_TRUE(other.RunSql("CREATE TABLE schema_migrations (x INTEGER)"))
      << "schema_migrations was created";

  // Past three tables the list ends with "...".
  TypeParam many;
  for (const char* name : {"a1", "a2", "a3", "a4"}) {
    ASSERT_TRUE(many.RunSql(std::string("CREATE TABLE ") + name + " (id INTEGER)"));
  }
  auto many_store = many.Open(this->Embedded());
  ASSERT_TRUE(many_store);
  auto refused = (*many_store)->Migrate();
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().message.find("(a1, a2, a3, ...)"), std::string::npos)
      << refused.error().message;
}

REGISTER_TYPED_TEST_SUITE_P(
    StoreTest, CreateAndLookUpUser, CreateUserWithGivenId, CreateUserWithItsFirstRefreshToken,
    EmailAndHandleConflictsIgnoreAsciiCase, UserFieldRules, UpdateProfile, UpdatePasswordHash,
    ChangePasswordRevokesTheSessionsTogether, SearchByHandlePrefix,
    SearchTreatsLikeWildcardsLiterally, InjectionPayloadsAreStoredAsData, InsertAndFindRefreshToken,
    RotateRefreshTokenAndDetectReuse, RotateExpiredOrRevokedToken, RevokeAllAndPurge,
    ListEndedLogins, ALoginTokenNeedsThePasswordTheLoginChecked,
    ConcurrentRotationsOfOneTokenRotateOnce, RotationsRacingAPasswordChangeLeaveNoLiveToken,
    AddListRemoveContacts, ReplaceContactsSyncsTheWholeList, InsertUpdateAndReadCall,
    CallWriteErrors, CallHistoryFiltersAndPages, HideCallForOneUserOnly,
    EndUnfinishedCallsEndsRingingAndActiveOnes, ARealEndReplacesAMadeUpOne,
    EndUnfinishedCallsByIdEndsOnlyThose, EndUnfinishedCallsLeavesCallsCreatedAfterTheCutoff,
    EndUnfinishedCallsLeavesAnotherClustersCalls, ApplyCallWritesCommitsABatch,
    ConcurrentWritersConflictCleanly, MigrateIsIdempotent, SchemaOfANewerTurnkeyIsRefused,
    FailedMigrationIsNotRecorded, FreshDatabaseIsBehind, ADatabaseOfAnotherProgramIsLeftAlone);

}  // namespace turnkey::sql::testing
