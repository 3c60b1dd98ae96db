// sql::Store: accounts, refresh tokens, contacts and call history
// (DESIGN.md section 6), with one implementation per database (SqliteStore,
// MysqlStore) and the same behaviour on both.
//
// Threads: every method blocks until the database answered, so call them from
// a work-queue thread, never from an event loop. All methods are safe to call
// from several threads at once. String views passed in only need to live for
// the call.
//
// Errors (base::ErrorCode), identical on both backends:
//   kAlreadyExists     a unique value is taken. The message is exactly
//                      kEmailTaken or kHandleTaken for users, kIdTaken for a
//                      duplicate call id or refresh token hash.
//   kNotFound          the row (or a row it refers to, e.g. the user of a new
//                      refresh token) does not exist.
//   kInvalidArgument   a field breaks the rules below; the message starts with
//                      the field name ("handle: ...").
//   kUnavailable       the database cannot be reached or timed out (server down,
//                      connection lost and the one retry failed, SQLite busy):
//                      the HTTP layer answers 503. A write that returns this
//                      may not have happened; a write that returned success is
//                      committed. The message is exactly kCommitOutcomeUnknown
//                      when the COMMIT was sent and its answer lost: the write
//                      may be in, and a caller that wrote a row it can name
//                      (a new id, a new token hash) may read it to know.
//   kPermissionDenied  the database server refused our account or database
//                      (MySQL 1044, 1045, 1049): a 503 too, but start-up does
//                      not wait for it to change.
//   kResourceExhausted no pooled connection became free in time (also a 503).
//   kInternal          anything else: a bug, unexpected data, or a schema this
//                      binary does not know (see CheckSchema()).
//
// Lookups (Get*, Find*, List*, CallHistory, MissedCalls, HideCall, and the
// other side of a contact) treat a malformed id or key as unknown: kNotFound,
// false or an empty list. Writes refuse malformed fields with kInvalidArgument.
//
// Field rules, checked in C++ before any SQL runs so both backends agree:
//   ids (users, calls, token hashes, token families): 1-128 bytes of
//     [A-Za-z0-9_-]; GenerateId() makes one.
//   text fields: valid UTF-8 (no NUL), at most the byte limits below.
//   email and handle compare case-insensitively for ASCII letters A-Z (the
//     store keeps an ASCII-lowercased copy with a unique index); any other
//     character compares byte for byte. The display case is kept.
//   times are Unix milliseconds supplied by the caller (`now_ms`), so tests
//     run on a fake clock.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/status.h"

namespace turnkey::sql {

// Messages of kAlreadyExists errors, for callers that must tell them apart.
inline constexpr std::string_view kEmailTaken = "email already registered";
inline constexpr std::string_view kHandleTaken = "handle already taken";
inline constexpr std::string_view kIdTaken = "id already exists";

// The message of a kUnavailable write whose COMMIT was sent and whose answer
// was lost (see kUnavailable above).
inline constexpr std::string_view kCommitOutcomeUnknown =
    "connection lost while committing; the write may not have been applied";
inline bool IsCommitOutcomeUnknown(const base::Error& error) {
  return error.code == base::ErrorCode::kUnavailable && error.message == kCommitOutcomeUnknown;
}

inline constexpr size_t kMaxIdBytes = 128;
inline constexpr size_t kMaxEmailBytes = 320;
inline constexpr size_t kMaxHandleBytes = 64;
inline constexpr size_t kMaxDisplayNameBytes = 256;
inline constexpr size_t kMaxPasswordHashBytes = 512;
// End reasons and the strings of an ICE report.
inline constexpr size_t kMaxLabelBytes = 64;
// Largest `limit` of a listing, and most entries ReplaceContacts accepts.
inline constexpr int kMaxPageSize = 1000;

// A new random id: 32 lower-case hex characters (128 bits).
std::string GenerateId();
// A new id that sorts by time: 12 hex digits of `now_ms`, then 20 random hex
// digits (80 bits). Use it for calls: new rows then land at the end of the
// primary key index instead of on a random page, which halves the pages a
// batch of call writes dirties (and fsyncs).
std::string GenerateTimeOrderedId(int64_t now_ms);

// ---- Users

struct User {
  std::string id;
  std::string email;          // as registered
  std::string handle;         // the public "Call ID", display case kept
  std::string display_name;   // may be empty
  std::string password_hash;  // an encoded argon2id string; opaque here
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
};

// What other users may see of a user.
struct UserSummary {
  std::string id;
  std::string handle;
  std::string display_name;

  friend bool operator==(const UserSummary&, const UserSummary&) = default;
};

// Fields left nullopt keep their value.
struct ProfileUpdate {
  std::optional<std::string> display_name;
  std::optional<std::string> handle;
};

// ---- Refresh tokens (stored hashed; the store never sees the token itself)

struct RefreshToken {
  std::string token_hash;
  std::string user_id;
  // Every token rotated from the same login shares the family id; reuse of a
  // rotated token revokes the whole family.
  std::string family_id;
  std::string replaced_by;  // hash of the successor; empty until rotated
  int64_t created_at_ms = 0;
  int64_t expires_at_ms = 0;
  std::optional<int64_t> revoked_at_ms;  // nullopt while usable
};

struct NewUser {
  std::string id;  // empty = GenerateId()
  std::string email;
  std::string handle;  // non-empty
  std::string display_name;
  std::string password_hash;  // non-empty
  int64_t now_ms = 0;         // becomes created_at and updated_at
  // Inserted in the same transaction when set (its user_id is ignored: the
  // new user's), so an account is never made without the login its
  // registration answered with.
  std::optional<RefreshToken> refresh_token;
};

enum class RotateOutcome {
  kRotated,   // the old token is revoked and the new one issued
  kNotFound,  // no token has that hash
  kExpired,   // the token expired; nothing changed
  kReused,    // the token had already been rotated: likely stolen. Every
              // token of its family is now revoked.
  kRevoked,   // the token had been revoked (logout); its family is now revoked
};

// A login (refresh-token family) that was ended: every token of it is
// revoked (logout, password change, reuse detected), none rotated onward.
struct EndedLogin {
  std::string family_id;
  std::string user_id;
  int64_t ended_at_ms = 0;  // the latest revocation in the family
};

struct RotateResult {
  RotateOutcome outcome = RotateOutcome::kNotFound;
  RefreshToken previous;  // the presented token as it was (empty if kNotFound)
  RefreshToken issued;    // the new token (only for kRotated)
};

// ---- Contacts

struct Contact {
  UserSummary user;
  int64_t added_at_ms = 0;
};

// What a contact sync left: the new list, and the entries that name no user.
struct ContactSync {
  std::vector<Contact> contacts;  // as ListContacts
  // Entries (ids, then handles) that are malformed or name no user, each once
  // (handles compared ignoring ASCII case), in the order given. The owner
  // is a user, so never here.
  std::vector<std::string> not_found;
};

// ---- Calls

enum class CallType { kAudio, kVideo };

enum class CallStatus {
  kRinging,    // offered, not answered yet
  kActive,     // answered, in progress
  kCompleted,  // answered and ended
  kMissed,     // not answered before the ring timeout, or the callee was offline
  kRejected,   // the callee declined
  kCancelled,  // the caller hung up while it rang
  kBusy,       // the callee was in another call
  kFailed,     // ended by an error (e.g. connection lost during setup)
};

enum class CallSide { kCaller, kCallee };

enum class CallDirection { kAny, kIncoming, kOutgoing };

// "audio", "video"; "ringing", "active", ...; "caller", "callee".
std::string_view CallTypeName(CallType type);
std::string_view CallStatusName(CallStatus status);
std::string_view CallSideName(CallSide side);
std::optional<CallType> ParseCallType(std::string_view name);
std::optional<CallStatus> ParseCallStatus(std::string_view name);

// One side's view of ICE, as the client reported it (`reportIce`).
struct IceReport {
  std::string state;                 // e.g. "connected", "failed"
  std::string local_candidate_type;  // host | srflx | prflx | relay, or ""
  std::string remote_candidate_type;
  std::string relay_protocol;  // udp | tcp | tls, or ""
  std::optional<int64_t> rtt_ms;
  int64_t reported_at_ms = 0;
  // For a failed report, why (metrics::kIceFailureCauseValues: turn_auth,
  // turn_refused, turn_unreachable, no_relay, checks_failed, unknown); ""
  // for a connected one and for calls written before schema version 7.
  std::string failure_cause;

  friend bool operator==(const IceReport&, const IceReport&) = default;
};

struct Call {
  std::string id;
  std::string caller_id;
  std::string callee_id;  // must differ from caller_id
  CallType type = CallType::kAudio;
  CallStatus status = CallStatus::kRinging;
  std::string end_reason;  // e.g. "hangup", "timeout", "busy", "connection_lost"
  int64_t created_at_ms = 0;
  std::optional<int64_t> answered_at_ms;
  std::optional<int64_t> ended_at_ms;
  int64_t duration_seconds = 0;
  std::optional<IceReport> caller_ice;
  std::optional<IceReport> callee_ice;

  friend bool operator==(const Call&, const Call&) = default;
};

// The mutable state of a call, written whole (so repeating it is harmless).
struct CallStateUpdate {
  std::string call_id;
  CallStatus status = CallStatus::kRinging;
  std::string end_reason;
  std::optional<int64_t> answered_at_ms;
  std::optional<int64_t> ended_at_ms;
  int64_t duration_seconds = 0;
};

struct IceUpdate {
  std::string call_id;
  CallSide side = CallSide::kCaller;
  IceReport report;
};

// The end reason EndUnfinishedCalls writes.
inline constexpr std::string_view kReasonServerRestart = "server_restart";

// Whether a call with `status` is over (neither ringing nor active).
inline bool IsEndStatus(CallStatus status) {
  return status != CallStatus::kRinging && status != CallStatus::kActive;
}

// One write of a batch: insert a call, update its state, or record ICE.
using CallWrite = std::variant<Call, CallStateUpdate, IceUpdate>;

// The checks Store::ApplyCallWrites makes on one write before running it
// (kInvalidArgument naming the problem).
base::Status ValidateCallWrite(const CallWrite& write);
// "insert", "state" or "ice"; and the id of the call the write is about.
std::string_view CallWriteKind(const CallWrite& write);
const std::string& CallWriteCallId(const CallWrite& write);

struct HistoryQuery {
  std::string user_id;
  std::optional<CallType> type;  // nullopt = both
  CallDirection direction = CallDirection::kAny;
  // Only incoming calls with status kMissed.
  bool missed_only = false;
  int limit = 20;  // 1..kMaxPageSize
  int skip = 0;    // >= 0
};

struct HistoryEntry {
  Call call;
  CallDirection direction = CallDirection::kOutgoing;  // kIncoming or kOutgoing
  bool missed = false;                                 // incoming and kMissed
  // The other participant; empty fields if that account no longer exists.
  UserSummary peer;
};

struct HistoryPage {
  std::vector<HistoryEntry> entries;  // newest first
  bool has_more = false;              // more entries exist past skip + limit
};

// ---- Schema

struct SchemaState {
  int current_version = 0;  // highest applied migration; 0 on an empty database
  int latest_version = 0;   // highest migration this binary carries
};

class Store {
 public:
  virtual ~Store() = default;

  // ---- Users

  // Creates a user, and its first refresh token if `user.refresh_token` is
  // set (both or neither). kAlreadyExists (kEmailTaken, checked first, or
  // kHandleTaken) when the email or handle is taken, ignoring ASCII case;
  // kIdTaken when the token hash is.
  virtual base::Result<User> CreateUser(const NewUser& user) = 0;
  virtual base::Result<User> GetUserById(std::string_view id) = 0;
  // Case-insensitive (ASCII) lookups.
  virtual base::Result<User> GetUserByEmail(std::string_view email) = 0;
  virtual base::Result<User> GetUserByHandle(std::string_view handle) = 0;
  // What others may see of a user, by id: the lookup every signaling
  // CONNECT makes, answered from an index that holds only these columns.
  virtual base::Result<UserSummary> GetUserSummaryById(std::string_view id) = 0;
  // Changes display name and/or handle atomically and returns the user as
  // stored. kHandleTaken if another user has the handle (changing the case of
  // one's own handle is allowed). updated_at becomes now_ms.
  virtual base::Result<User> UpdateProfile(std::string_view user_id, const ProfileUpdate& update,
                                           int64_t now_ms) = 0;
  // Replaces the user's password hash while it is still `expected_hash` (a
  // login's upgrade to new hashing parameters must not undo a password change
  // made meanwhile): kPermissionDenied ("password changed") when it is not,
  // kNotFound without the user. updated_at becomes now_ms.
  virtual base::Status UpdatePasswordHash(std::string_view user_id, std::string_view expected_hash,
                                          std::string_view password_hash, int64_t now_ms) = 0;
  // A password change: in one transaction, sets the hash (whatever it was;
  // updated_at becomes now_ms) and revokes every live refresh token of the user (as
  // RevokeAllRefreshTokens); returns how many were revoked. Then inserts
  // `new_login` (its user_id must be `user_id`) unless it is null: the
  // session of the device that changed it. All happen or none: a new
  // password never leaves the old sessions alive, nor comes without the
  // login that was answered with it.
  virtual base::Result<int64_t> ChangePassword(std::string_view user_id,
                                               std::string_view password_hash, int64_t now_ms,
                                               const RefreshToken* new_login) = 0;
  // Users whose handle starts with `prefix` (ASCII case-insensitive; `%`, `_`
  // and every other character match literally), ordered by lower-cased
  // handle, never `exclude_user_id`, at most `limit` (1..kMaxPageSize). An
  // empty prefix finds nobody.
  virtual base::Result<std::vector<UserSummary>> SearchUsersByHandlePrefix(
      std::string_view prefix, std::string_view exclude_user_id, int limit) = 0;

  // ---- Refresh tokens

  // kNotFound if the user does not exist, kAlreadyExists (kIdTaken) for a
  // duplicate hash. replaced_by and revoked_at_ms are ignored (a new token is
  // live).
  virtual base::Status InsertRefreshToken(const RefreshToken& token) = 0;
  // A login's token: inserted only if the user's password hash is still
  // `password_hash` (the one the login checked the password against), in a
  // transaction that locks the user's row first. So a login that races a
  // password change either goes in first and has its token revoked by the
  // change, or comes second and is refused: kPermissionDenied ("password
  // changed"; also for an unknown user).
  virtual base::Status InsertLoginRefreshToken(const RefreshToken& token,
                                               std::string_view password_hash) = 0;
  virtual base::Result<RefreshToken> FindRefreshToken(std::string_view token_hash) = 0;
  // In one transaction: if `old_hash` is live (not revoked, expires_at >
  // now_ms) revoke it and insert `new_hash` (same user and family, created
  // now_ms, expiring new_expires_at_ms). A revoked token revokes its whole
  // family (kReused / kRevoked) and that revocation is committed. Two
  // concurrent rotations of one token: exactly one gets kRotated.
  virtual base::Result<RotateResult> RotateRefreshToken(std::string_view old_hash,
                                                        std::string_view new_hash,
                                                        int64_t new_expires_at_ms,
                                                        int64_t now_ms) = 0;
  // True if the token was live and is now revoked; false if it was already
  // revoked or does not exist.
  virtual base::Result<bool> RevokeRefreshToken(std::string_view token_hash, int64_t now_ms) = 0;
  // Revokes every live token of the user; returns how many.
  virtual base::Result<int64_t> RevokeAllRefreshTokens(std::string_view user_id,
                                                       int64_t now_ms) = 0;
  // Logins that ended after `since_ms`: families with a token revoked after
  // it and no token left unrevoked. Lets a server that restarted (or another
  // node, or `turnkey user`) refuse the access tokens those logins bought.
  virtual base::Result<std::vector<EndedLogin>> ListEndedLogins(int64_t since_ms) = 0;
  // Deletes up to `limit` (> 0) tokens that expired at or before
  // `expired_before_ms`, the oldest first (revoked ones are kept until then,
  // for reuse detection); returns how many. The bound keeps one call's
  // write transaction short however large the backlog.
  virtual base::Result<int64_t> PurgeExpiredRefreshTokens(int64_t expired_before_ms,
                                                          int64_t limit) = 0;

  // ---- Contacts

  // The owner's contacts with their public fields, ordered by lower-cased
  // handle. An unknown owner has no contacts.
  virtual base::Result<std::vector<Contact>> ListContacts(std::string_view owner_id) = 0;
  // True if added, false if already a contact. kNotFound if either user does
  // not exist; kInvalidArgument for oneself.
  virtual base::Result<bool> AddContact(std::string_view owner_id, std::string_view contact_id,
                                        int64_t now_ms) = 0;
  // True if removed, false if it was not a contact.
  virtual base::Result<bool> RemoveContact(std::string_view owner_id,
                                           std::string_view contact_id) = 0;
  // Sync: in one transaction, makes the contact list exactly the users named
  // by `user_ids` and `handles` (case-insensitive) that exist. Unknown or
  // malformed entries and the owner are skipped, duplicates collapse;
  // contacts that stay keep their added_at. Returns the new list and the
  // entries that named no user. kNotFound for an unknown owner;
  // kInvalidArgument for more than kMaxPageSize entries in total.
  virtual base::Result<ContactSync> ReplaceContacts(std::string_view owner_id,
                                                    std::span<const std::string> user_ids,
                                                    std::span<const std::string> handles,
                                                    int64_t now_ms) = 0;

  // ---- Calls

  // Inserts the call and one history row per participant. kNotFound if a
  // participant does not exist, kAlreadyExists (kIdTaken) for a duplicate id.
  virtual base::Status InsertCall(const Call& call) = 0;
  // kNotFound if no such call. A call already ended keeps its end
  // (kAlreadyExists, unless the same end is written again), except an end
  // EndUnfinishedCalls made up: a final status with another reason replaces
  // it (the end of whoever ran the call, written late).
  virtual base::Status UpdateCallState(const CallStateUpdate& update) = 0;
  virtual base::Status RecordIceReport(const IceUpdate& update) = 0;
  // Group commit: applies `writes` in order in one transaction. The outer
  // error means nothing was applied (e.g. kUnavailable); otherwise element i
  // is the outcome of writes[i], as the single-write method would return it,
  // and every successful one is committed.
  virtual base::Result<std::vector<base::Status>> ApplyCallWrites(
      std::span<const CallWrite> writes) = 0;
  virtual base::Result<Call> GetCall(std::string_view call_id) = 0;
  // The user's calls they have not hidden, newest first (ties by id).
  virtual base::Result<HistoryPage> CallHistory(const HistoryQuery& query) = 0;
  // CallHistory with missed_only.
  virtual base::Result<HistoryPage> MissedCalls(std::string_view user_id, int limit, int skip) = 0;
  // Hides the call from this user's history only. kNotFound if the user is
  // not a participant. Hiding twice is fine.
  virtual base::Status HideCall(std::string_view call_id, std::string_view user_id) = 0;
  // For a start after a crash or a kill: calls still ringing or active, whose
  // ends the last process never wrote, become missed (ringing) or failed
  // (active), reason kReasonServerRestart, ended when they were created or
  // answered (duration 0: how long they went on is unknown). Returns how
  // many. Only by the one node that keeps call state for this database (a
  // single node at its start; in a cluster, a node that became the
  // coordinator, with `created_before_ms` (Unix ms) the moment it did, so
  // its own new calls are left alone). nullopt = every such call. Only the
  // calls written by a store of the same cluster (SqlStore::set_cluster).
  virtual base::Result<int> EndUnfinishedCalls(std::optional<int64_t> created_before_ms) = 0;
  // EndUnfinishedCalls for the calls `ids` only, whoever wrote them (the
  // calls a saved history file leaves going: their process is gone); one
  // transaction. Returns how many it ended.
  virtual base::Result<int> EndUnfinishedCallsById(std::span<const std::string> ids) = 0;

  // ---- Health and schema

  // A round trip to the database (for /readyz).
  virtual base::Status Ping() = 0;
  virtual base::Result<SchemaState> GetSchemaState() = 0;
  // Applies pending migrations in order, each in its own transaction and
  // recorded in schema_migrations; returns how many were applied (0 when up
  // to date). Refuses (kInternal) a database newer than this binary or one
  // whose recorded migration names differ from ours. Safe to run from two
  // processes at once.
  virtual base::Result<int> Migrate() = 0;
  // Ok only if the schema is exactly the latest this binary knows: kInternal
  // with a message saying what to do if the database is newer ("upgrade
  // turnkey") or behind ("run turnkey migrate").
  virtual base::Status CheckSchema() = 0;
};

}  // namespace turnkey::sql
