// CallManager: presence and the one-to-one call flow of DESIGN.md section 5,
// sans-I/O.
//
// The signaling loop tells it which sockets are connected (and whose they
// are), hands it each call event a client sent, and calls OnTimer when
// NextDeadline() has passed. It answers every client event with the ack
// payload ({ok:true, ...} or {ok:false, error, callId}) and emits everything
// else through CallEmitter; a failed event is also emitted to the requesting
// socket as `callError {error, callId}`. Events are emitted before the method
// returns, so they reach the socket before the ack.
//
// Rules (beyond the table in DESIGN.md section 5):
// - A user takes part in at most one live (ringing or active) call. An
//   initiateCall from a user in a call fails with "Already in a call", except
//   for glare: B initiates a call to A while A's call to B still rings on B.
//   Then B's initiateCall accepts A's call from the initiating socket, exactly
//   like acceptCall would (callAcceptedConfirm to it, callAccepted to A,
//   callAnsweredElsewhere to B's other devices; the ack has glare:true and
//   A's callId). The call keeps A's callType; no second call is created.
// - initiateCall checks, in order: a registered socket ("Not authorized"),
//   draining ("Server is shutting down"), the payload ("receiverId
//   required", "Invalid callType"; these cost no token), the socket's and
//   the user's token buckets ("Rate limited"), the receiver ("Receiver not
//   found", "Cannot call yourself"),
//   glare, the caller's own call ("Already in a call", with that call's id).
//   A user's bucket is dropped when their last socket closes. Then a call is created
//   and recorded, and: callee offline -> userNotAvailable {callId,
//   receiverId} and the call ends `unavailable`, ack error "User not
//   available"; callee in a live call -> callRejected {callId, receiverId,
//   reason:"busy"} and the call ends `busy`, ack error "User busy"; else
//   callInitiated to the caller and incomingCall to every callee device.
// - The callee's devices are all of the callee's connected sockets, looked up
//   when needed: a callee device that connects while a call rings gets
//   incomingCall; a callee device that drops while ringing just stops ringing,
//   and if it was the last one the call rings on until the ring timeout
//   (a reconnect within it still gets incomingCall) and ends `missed`.
// - Who may do what. acceptCall / rejectCall: any socket of the callee while
//   ringing (the caller: "Not authorized"; after the call was answered:
//   "Call already processed"). endCall: any socket of either participant
//   (ending is always safe; it covers a client whose old socket is not yet
//   known to be dead): the caller while ringing cancels, the callee while
//   ringing rejects (confirmed with callEndedConfirm), either while active
//   completes it (reason "hangup"). sendOffer / sendAnswer / sendIceCandidate
//   / reportIce: only the caller's socket and, after accept, the accepting
//   callee socket; other sockets of the same users get "Not authorized".
// - While ringing, the caller may already signal: offers and candidates are
//   held and delivered to the accepting device right after
//   callAcceptedConfirm. Messages for a side whose socket dropped during an
//   active call are held until it rejoins. At most max_held_messages per side,
//   max_held_bytes of them ("Rate limited" beyond). reportIce is refused
//   while ringing ("Call not active") and capped per side
//   (max_ice_reports_per_side, "Rate limited");
//   each reaches the history, only a side's first one the metrics. After an
//   answered call ended, its participants' reports are still taken for
//   ended_call_retention (the second side's failure usually follows the
//   first side's endCall).
// - A dropped socket: the caller's while ringing -> the call is cancelled
//   (callEnded reason "cancelled" to the callee devices); a participant's
//   during an active call -> reconnect_grace starts. rejoinCall from any
//   socket of that user (also before the old socket is known to be dead)
//   moves the side to the new socket: the other side gets peerReconnected
//   {callId, userId}, a still-connected old socket gets callEnded reason
//   "rejoined_elsewhere", held messages are delivered. Without a rejoin the
//   call ends `connection_lost` and the other side gets callEnded {endedBy:
//   the lost user, reason:"connection_lost"}. rejoinCall on a ringing call
//   is accepted too (the callee's devices ring anyway; the caller's side
//   moves to the new socket). While a side has no socket (the grace), an
//   offer, answer, candidate or reportIce from another socket of that user
//   moves the side as rejoinCall would, then counts: Socket.IO clients send
//   what they buffered offline before the app's connect handler can emit
//   rejoinCall. A side whose socket is alive moves only by rejoinCall.
// - Ended calls: their ids are remembered for ended_call_retention (the
//   latest max_remembered_ended_calls of them at most). Any event
//   for one from a participant gets "Call already processed" (Socket.IO
//   clients replay buffered emits after a reconnect: they are refused, never
//   acted on); from anyone else "Not authorized"; once forgotten, "Call not
//   found". A callee socket that connects gets callEnded again for the
//   remembered calls that rang on the callee and ended unanswered (a device
//   away at that moment would ring on). Statuses: completed (accepted, then
//   endCall; ice_failed instead when the media failed: MediaFailed), missed (ring timeout; also a
//   ringing call at EndAll), rejected, busy, cancelled, unavailable, connection_lost (its end is
//   when the socket was found gone). An active call at EndAll is completed with the given reason.
//   callEnded carries endedBy null when the server ended the call (timeout, shutdown).
// - Draining (SetDraining) refuses initiateCall; everything else goes on.
//   EndAll ends every live call and tells every participant socket.
//
// Not thread-safe: one signaling loop owns it. `emitter`, `recorder` and
// `metrics` must outlive it and must not call back into it (call_sinks.h).
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <expected>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/clock.h"
#include "signal/call.h"
#include "signal/call_payload.h"
#include "signal/call_sinks.h"
#include "signal/presence.h"
#include "signal/token_bucket.h"

namespace turnkey::signal {

// All reloadable: changes apply to calls rung, sockets dropped and events
// handled afterwards.
struct CallManagerOptions {
  // How long a call rings before it ends `missed` (signal.ring_timeout).
  base::Duration ring_timeout = std::chrono::seconds(30);
  // How long a participant of an active call whose socket dropped has to
  // rejoinCall before the call ends `connection_lost` (signal.reconnect_grace).
  base::Duration reconnect_grace = std::chrono::seconds(10);
  // How long an ended call's id is remembered ("Call already processed").
  base::Duration ended_call_retention = std::chrono::seconds(60);
  // At most this many ended calls are remembered; past it the oldest is
  // forgotten early (an event for it is then "Call not found"). About 0.7
  // KiB each: the bound on what a flood of short calls holds, reached only
  // above 1,600 calls/s with the default retention.
  size_t max_remembered_ended_calls = 100'000;
  // initiateCall token buckets: at most `burst` at once, refilled at `rate`
  // per second; one per socket and one per user (across their devices). A
  // rate of 0 turns that limit off (signal.rate_limits).
  double initiate_socket_burst = 5;
  double initiate_socket_rate = 0.5;
  double initiate_user_burst = 10;
  double initiate_user_rate = 1;
  // Signaling messages held per side of a call while it cannot be delivered,
  // and their size in all (roughly their JSON's): one message may be as big
  // as signal.engineio.max_payload, SDP and candidates are a few KB.
  size_t max_held_messages = 64;
  size_t max_held_bytes = size_t{1} << 20;
  // reportIce accepted per side of a call.
  int max_ice_reports_per_side = 8;
};

class CallManager {
 public:
  // Returns a new opaque call id. Default: base::RandomHex(16).
  using IdGenerator = std::function<std::string()>;

  CallManager(CallManagerOptions options, CallEmitter& emitter, CallRecorder& recorder,
              CallMetricsSink& metrics, IdGenerator new_call_id = {});
  CallManager(const CallManager&) = delete;
  CallManager& operator=(const CallManager&) = delete;

  void SetOptions(CallManagerOptions options) { options_ = options; }
  const CallManagerOptions& options() const { return options_; }
  void SetDraining(bool draining) { draining_ = draining; }
  bool draining() const { return draining_; }

  // ---- Presence

  // `socket` of `user_id` connected (after authentication). False if the
  // socket is already registered, is 0 (the manager's "no socket": ended
  // calls remember their sides' sockets that way) or the user id is empty.
  // A callee device connecting while its user's call rings gets
  // incomingCall; one connecting while another device of the user is in the
  // call (answered there, not waiting out a grace) gets
  // callAnsweredElsewhere: it may have rung while it was away.
  bool OnSocketConnected(base::MonoTime now, uint64_t socket, std::string_view user_id);
  // `socket` closed. Unknown sockets are ignored.
  void OnSocketDisconnected(base::MonoTime now, uint64_t socket);
  // `socket` was resumed (Socket.IO connection-state recovery): its client
  // came back on a new connection under the same number. `was_connected`:
  // the number never left (the old connection was replaced while it seemed
  // alive); else it left and OnSocketConnected has registered it again.
  // A side of an active call that lost this socket takes it back (grace
  // cancelled, held messages delivered); the other side gets peerReconnected
  // with the resumed side's next call event (rejoinCall, say), as if it came
  // from a rejoin. What the old connection may not have delivered is told
  // again: callEnded of the calls this socket took part in that ended within
  // reconnect_grace, and of those that rang on the user and ended unanswered
  // (as to a device that connects); incomingCall of the user's call that
  // rings, callAnsweredElsewhere of the one another device of theirs
  // answered (both as to a device that connects). A client may thus get a
  // callEnded or an incomingCall twice, never none. `away_since`: when the socket was lost, if
  // known (a cluster node's socket it could not reach); every call of it that ended since is told
  // too, however long ago.
  void OnSocketResumed(base::MonoTime now, uint64_t socket, bool was_connected,
                       std::optional<base::MonoTime> away_since = std::nullopt);

  // ---- Client events. Each returns the ack payload.

  // Dispatches by event name; nullopt if `event` is not a call event
  // (getIceServers and the like are the app's).
  std::optional<Json> OnEvent(base::MonoTime now, uint64_t socket, std::string_view event,
                              const Json& payload, UserDirectory& directory);

  // initiateCall in one step, resolving the receiver and the caller's
  // summary through `directory` (synchronously).
  Json OnInitiateCall(base::MonoTime now, uint64_t socket, const Json& payload,
                      UserDirectory& directory);
  // initiateCall in two steps, for lookups that must not run on the loop.
  // Begin checks the socket, draining, rate limits and the payload; on error
  // it has emitted callError and returns the ack. The app then resolves the
  // receiver (by id or handle) and the caller's summary, and calls Finish
  // with them: `receiver` nullopt means not found. Finish re-checks that the
  // socket is still connected, belongs to `caller.id`, and draining.
  std::expected<InitiateRequest, Json> BeginInitiateCall(base::MonoTime now, uint64_t socket,
                                                         const Json& payload);
  Json FinishInitiateCall(base::MonoTime now, uint64_t socket, const InitiateRequest& request,
                          const std::optional<UserInfo>& receiver, const UserInfo& caller);

  Json OnAcceptCall(base::MonoTime now, uint64_t socket, const Json& payload);
  Json OnRejectCall(base::MonoTime now, uint64_t socket, const Json& payload);
  Json OnEndCall(base::MonoTime now, uint64_t socket, const Json& payload);
  Json OnSendOffer(base::MonoTime now, uint64_t socket, const Json& payload);
  Json OnSendAnswer(base::MonoTime now, uint64_t socket, const Json& payload);
  Json OnSendIceCandidate(base::MonoTime now, uint64_t socket, const Json& payload);
  Json OnReportIce(base::MonoTime now, uint64_t socket, const Json& payload);
  Json OnRejoinCall(base::MonoTime now, uint64_t socket, const Json& payload);

  // ---- Time

  // When OnTimer next has work (a ring timeout, a grace period, forgetting an
  // ended call id); nullopt if never. Calling OnTimer late or early is safe.
  std::optional<base::MonoTime> NextDeadline() const;
  // Runs everything due at or before `now`.
  void OnTimer(base::MonoTime now);

  // ---- Shutdown

  // Ends every live call with `reason`: participants' sockets get callEnded
  // {callId, endedBy:null, reason}. Recorded as missed (ringing) or
  // completed (active), but as connection_lost (stored `failed`) when
  // `reason` is kReasonConnectionLost. Does not set draining.
  void EndAll(base::MonoTime now, std::string_view reason = kReasonServerShutdown);

  // ---- Introspection (tests, /readyz, the REST adapter)

  struct CallView {
    CallInfo info;
    CallState state = CallState::kRinging;
    std::optional<uint64_t> caller_socket;
    std::optional<uint64_t> callee_socket;  // the accepting device; nullopt while ringing
    bool caller_in_grace = false;
    bool callee_in_grace = false;
  };
  std::optional<CallView> FindCall(std::string_view call_id) const;
  // The id of the live call `user_id` takes part in, if any.
  std::optional<std::string> CurrentCallOf(std::string_view user_id) const;
  size_t call_count() const { return calls_.size(); }
  size_t remembered_ended_calls() const { return tombstones_.size(); }
  const Presence& presence() const { return presence_; }

 private:
  enum class TimerKind : uint8_t { kRing, kCallerGrace, kCalleeGrace };
  struct TimerEntry {
    TimerKind kind;
    std::string call_id;
  };
  using TimerMap = std::multimap<base::MonoTime, TimerEntry>;

  struct HeldMessage {
    std::string_view event;  // a string literal
    Json payload;
  };
  struct Side {
    std::optional<uint64_t> socket;  // caller: from initiate; callee: from accept
    std::optional<TimerMap::iterator> grace;
    // When the grace started (the socket was found gone): a call that ends
    // connection_lost ended then, not when the grace ran out.
    base::MonoTime lost_at{};
    uint64_t lost_socket = 0;  // the socket it was, which a resume brings back
    // Resumed: the other side gets peerReconnected with this side's next
    // call event.
    bool announce_reconnect = false;
    std::vector<HeldMessage> held;  // for this side, waiting for its socket
    size_t held_bytes = 0;          // what `held` came in with (JsonSize)
    int ice_reports = 0;
    // What this side's latest ICE report said, if it sent one, and whether
    // that is a failure after a connected report (media lost mid-call).
    std::optional<metrics::IceResult> latest_ice;
    bool media_lost = false;
  };
  struct Call {
    CallInfo info;
    UserInfo caller;  // for incomingCall
    CallState state = CallState::kRinging;
    std::optional<base::MonoTime> answered_at;
    std::optional<TimerMap::iterator> ring_timer;
    std::array<Side, 2> sides;  // indexed by CallSide
    bool setup_counted = false;
  };
  struct Tombstone {
    std::string caller_id;
    std::string callee_id;
    // callEnded's endedBy ("" = the server) and reason, for a callee device
    // that was away when a call that rang on it ended.
    std::string ended_by;
    std::string reason;
    bool answered = false;
    bool rang_unanswered = false;      // on rang_and_ended_
    std::array<int, 2> ice_reports{};  // per CallSide, carried on from the call
    // Per CallSide: the socket the side had when the call ended, or the one
    // it had just lost (its grace; a ringing caller's), 0 = none; and when
    // it ended. A resume of one of them soon after gets callEnded again.
    std::array<uint64_t, 2> sockets{};
    base::MonoTime ended_at{};
  };
  // A call event's call, resolved and authorised to the extent every event
  // needs: the socket is registered and its user takes part in the call.
  struct Target {
    Call* call;
    const std::string* user;
    CallSide side;
  };

  static Side& SideOf(Call& call, CallSide side) { return call.sides[static_cast<size_t>(side)]; }
  // Whether an answered call ends on failed media: a side lost its media
  // mid-call (failed after connected, not connected since), or reports said
  // failed and no side's latest says connected (it never connected).
  static bool MediaFailed(const Call& call);
  static const Side& SideOf(const Call& call, CallSide side) {
    return call.sides[static_cast<size_t>(side)];
  }
  static CallSide Other(CallSide side) {
    return side == CallSide::kCaller ? CallSide::kCallee : CallSide::kCaller;
  }
  static const std::string& UserOfSide(const Call& call, CallSide side) {
    return side == CallSide::kCaller ? call.info.caller_id : call.info.callee_id;
  }

  // Acks; Fail also emits callError to `socket`.
  static Json Ok(std::string_view call_id);
  Json Fail(uint64_t socket, std::string_view error, std::optional<std::string_view> call_id);

  // The common checks of every event carrying a callId; on error the
  // returned ack has been emitted as callError.
  std::expected<Target, Json> Resolve(uint64_t socket, const Json& payload);
  Call* FindLive(std::string_view call_id);
  Call* CallOfUser(std::string_view user_id);
  std::string NewCallId();

  // The one state transition function: ringing -> active | ended,
  // active -> ended.
  static void Transition(Call& call, CallState next);
  Json AcceptRinging(Call& call, base::MonoTime now, uint64_t socket, bool glare);
  Json RejectRinging(Call& call, base::MonoTime now, uint64_t socket,
                     std::string_view confirm_event);
  // Ends `call`: records, counts, remembers its id and erases it. `call` is
  // dangling afterwards.
  // `ended_at` (default `now`) is the end recorded in the history.
  void Finish(Call& call, base::MonoTime now, metrics::CallStatus status, std::string_view reason,
              std::string_view ended_by, std::optional<base::MonoTime> ended_at = std::nullopt);
  Json Relay(uint64_t socket, const Json& payload, std::string_view field,
             std::string_view out_event, std::string_view missing_error);
  // reportIce for an answered call that ended within ended_call_retention,
  // from a participant: recorded and counted like a live one (the other side
  // often reports its failure just after the first side's endCall). nullopt
  // when the payload is not that (Resolve then says why).
  std::optional<Json> LateIceReport(base::MonoTime now, uint64_t socket, const Json& payload);
  // Records one report of `side` and counts a side's first in the metrics.
  void TakeIceReport(base::MonoTime now, std::string_view call_id, const std::string& user,
                     CallSide side, int& reports, IceReportFields fields);

  // Emitting to the parties of a call.
  void EmitToCalleeDevices(const Call& call, std::string_view event, Json payload,
                           std::optional<uint64_t> except);
  void EmitToSide(Call& call, CallSide side, std::string_view event, Json payload);
  void DeliverHeld(Call& call, CallSide side);
  // callEnded {callId, endedBy, reason} of the remembered call `call_id` to
  // `socket`, which may have missed it.
  void TellEnded(uint64_t socket, const std::string& call_id);
  // What a device of `user_id` that just came (back) must know of `call`,
  // its user's call: incomingCall while it rings on the callee,
  // callAnsweredElsewhere while another device of the callee is in it.
  void TellCallState(const Call& call, uint64_t socket, std::string_view user_id);
  // peerReconnected {callId, userId} to the other side of an active call.
  void TellReconnected(Call& call, CallSide side);
  // Moves `side` of `call` to `socket` of `user` (rejoinCall): cancels its
  // grace, tells an old live socket and the other side, delivers what was
  // held.
  void MoveSide(Call& call, CallSide side, uint64_t socket, const std::string& user);
  // MoveSide() when `side` lost its socket in an active call; false (and
  // nothing done) otherwise.
  bool AdoptInGrace(Call& call, CallSide side, uint64_t socket, const std::string& user);
  static Json CallEndedJson(std::string_view call_id, std::string_view ended_by,
                            std::string_view reason);

  TimerMap::iterator AddTimer(base::MonoTime deadline, TimerKind kind, const std::string& call_id);
  void CancelTimer(std::optional<TimerMap::iterator>& timer);
  void RingTimedOut(Call& call, base::MonoTime now);
  void GraceExpired(Call& call, CallSide side, base::MonoTime now);
  void ForgetEndedCalls(base::MonoTime now);
  // Forgets the ended call remembered longest (tombstone_expiry_'s front).
  void ForgetOldestEndedCall();
  // The user's last socket went: drops their initiateCall bucket once it
  // has refilled, and sweeps such buckets of other offline users now and then.
  void ForgetUserBucket(const std::string& user, base::MonoTime now);

  CallManagerOptions options_;
  CallEmitter& emitter_;
  CallRecorder& recorder_;
  CallMetricsSink& metrics_;
  IdGenerator new_call_id_;
  bool draining_ = false;

  Presence presence_;
  std::unordered_map<std::string, Call, StringHash, std::equal_to<>> calls_;
  // user id -> the id of their live call.
  std::unordered_map<std::string, std::string, StringHash, std::equal_to<>> user_calls_;
  TimerMap timers_;
  std::unordered_map<std::string, Tombstone, StringHash, std::equal_to<>> tombstones_;
  std::deque<std::pair<base::MonoTime, std::string>> tombstone_expiry_;  // oldest first
  // Ids of remembered calls (keys of tombstones_, which stay put) in the
  // order the calls ended. Ended calls are forgotten in that order too, so
  // forgetting one takes the first of each list it is on: O(1), where a
  // search would cost as many steps as the socket or user has remembered
  // calls (hundreds per socket under a load of short calls).
  class EndedIds {
   public:
    void Add(const std::string* id) { ids_.push_back(id); }
    // Removes `id`; true when the list is empty afterwards.
    bool Remove(const std::string* id);
    auto begin() const { return ids_.begin() + static_cast<std::ptrdiff_t>(first_); }
    auto end() const { return ids_.end(); }

   private:
    std::vector<const std::string*> ids_;
    size_t first_ = 0;  // ids_[0, first_) are removed
  };
  // callee id -> remembered calls that rang on the callee's devices and
  // ended unanswered (timeout, cancel, a reject from one of them): a device
  // that connects gets their callEnded, which it may have missed.
  std::unordered_map<std::string, EndedIds, StringHash, std::equal_to<>> rang_and_ended_;
  // Tombstone::sockets -> their calls, while remembered: what a resumed
  // socket may have missed, found without a scan.
  std::unordered_map<uint64_t, EndedIds> ended_by_socket_;
  std::unordered_map<uint64_t, TokenBucket> socket_buckets_;
  std::unordered_map<std::string, TokenBucket, StringHash, std::equal_to<>> user_buckets_;
  // user_buckets_'s size after the last sweep (ForgetUserBucket).
  size_t user_buckets_swept_ = 0;
};

}  // namespace turnkey::signal
