// CallDriver: rings, accepts and hangs up calls between pairs of users over
// their SioClients, and measures call setup, for the Socket.IO load
// generator (bench/signaling/sio_loadgen.cc).
//
// Users are paired in order: users 2k and 2k+1 call each other, in turn in
// each direction. One call:
//   caller: initiateCall {receiverId, callType} (ack)   -- t0
//   callee, on incomingCall: acceptCall {callId} (ack)
//   caller, on callAccepted: endCall {callId} (ack)     -- setup = now - t0
//   done when the caller's endCall ack and the callee's callEnded are in;
//   then the pair may ring again.
// Every ack must say ok:true; anything else is counted by its error string.
//
// Pacing: open loop at a fixed rate of call starts (`rate` > 0; a start
// that finds no pair free is made as soon as one is, and counted late when
// that is more than 1 ms after its time), or a closed loop (`rate` 0) with
// at most `window` calls in flight. Either way a pair only rings when the
// server's rate limits, modelled here from `limits` with a margin, allow it,
// so a well-configured run never sees "Rate limited".
//
// Not thread-safe: one worker thread owns it, and the SioClients it is
// given.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "bench/latency_histogram.h"
#include "bench/signaling/sio_client.h"

namespace turnkey::bench {

// The server's limits the driver stays under (signal/call_manager.h and
// signal/socketio_server.h defaults). A rate of 0 means no limit.
struct ServerLimits {
  double initiate_socket_rate = 0.5;  // initiateCall per socket, per second
  double initiate_socket_burst = 5;
  double initiate_user_rate = 1;  // initiateCall per user (all sockets), per second
  double initiate_user_burst = 10;
  double event_rate = 50;  // any client event, per socket, per second
  double event_burst = 100;
};

struct CallDriverOptions {
  double rate = 0;    // call starts per second; 0 = closed loop
  size_t window = 0;  // closed loop: calls in flight at most; 0 = one per pair
  ServerLimits limits;
  std::string call_type = "audio";
  // A call with no progress for this long is given up (its pair retired).
  int64_t call_timeout_ns = 10'000'000'000;
};

// Where the run is; set by the controlling thread, read by the worker.
enum class RunPhase : int {
  kConnect = 0,  // connections only
  kWarmup = 1,   // calls run, nothing is counted
  kMeasure = 2,  // calls run and are counted
  kDrain = 3,    // no new calls; in-flight calls finish
  kStop = 4,     // close everything
};

struct CallStats {
  LatencyHistogram setup_ns;     // calls whose callAccepted came while measuring
  uint64_t completed = 0;        // calls done while measuring
  uint64_t completed_total = 0;  // calls done in any phase
  uint64_t started = 0;          // calls started while measuring
  uint64_t late = 0;             // fixed rate: started > 1 ms after their time, while measuring
  uint64_t late_limits = 0;      // ... of which waited for a pair the limits held back
  uint64_t late_busy = 0;        // ... of which waited for a pair to finish its call
  uint64_t late_self = 0;        // ... of which the driver itself was late (its CPU)
  // Closed loop, while measuring: time with fewer calls in flight than the
  // window while idle pairs waited for the limits (the limits, not the
  // server, set the pace then).
  int64_t limited_ns = 0;
  uint64_t timeouts = 0;
  uint64_t stray = 0;                      // events for no call in flight (e.g. after a timeout)
  std::map<std::string, uint64_t> errors;  // failure -> count (any phase)
};

class CallDriver {
 public:
  // `user_ids[i]` is user i's id; users 2k and 2k+1 form pair k (an odd last
  // user is left out).
  CallDriver(CallDriverOptions options, std::vector<std::string> user_ids);

  // Socket `client` of user `user` is ready to call and be called.
  void AddSocket(size_t user, SioClient& client);
  // Forwarded from the SioClientHandler of `client` (tag() = its user).
  void OnEvent(int64_t now_ns, SioClient& client, std::string_view event, std::string_view packet,
               RunPhase phase);
  void OnAck(int64_t now_ns, SioClient& client, uint64_t ack_id, std::string_view packet,
             RunPhase phase);
  void OnClosed(int64_t now_ns, SioClient& client);

  // Starts what is due and gives up on stuck calls. Call after each batch of
  // events, and by the time NextWakeNs() says.
  void Tick(int64_t now_ns, RunPhase phase);
  // When Tick next has something to do (a start becomes due or a pair
  // becomes ready); INT64_MAX if nothing is waiting for time.
  int64_t NextWakeNs(int64_t now_ns, RunPhase phase) const;

  size_t in_flight() const { return in_flight_; }
  size_t pairs() const { return pairs_.size(); }
  const CallStats& stats() const { return stats_; }

 private:
  // Tokens in the driver's copy of one of the server's buckets.
  struct Bucket {
    double tokens = -1;  // < 0: not made yet (the server starts it full)
    int64_t last_ns = 0;
    // When `need` tokens will be there (now if they are).
    int64_t ReadyAt(int64_t now_ns, double rate, double burst, double need) const;
    void Take(int64_t now_ns, double rate, double burst, double count);
  };
  struct User {
    std::string id;
    std::vector<SioClient*> sockets;
    std::vector<Bucket> socket_initiate;
    std::vector<Bucket> socket_events;
    Bucket initiate;
    size_t next_socket = 0;
  };
  enum class PairState : uint8_t {
    kWaiting,  // not all sockets ready yet
    kIdle,     // queued in ready_
    kInCall,   // a call in flight
    kRetired,  // gave up on it (a lost socket or a stuck call)
  };
  struct Pair {
    size_t users[2];
    PairState state = PairState::kWaiting;
    int next_caller = 0;  // index into users[]
    // The call in flight.
    size_t caller = 0;
    size_t callee = 0;
    SioClient* caller_socket = nullptr;
    SioClient* callee_socket = nullptr;
    std::string call_id;
    std::string last_call_id;  // events for it are stale, not errors
    uint64_t initiate_ack = 0;
    uint64_t accept_ack = 0;
    uint64_t end_ack = 0;
    bool accepted = false;
    bool end_acked = false;
    bool callee_ended = false;
    int64_t emit_ns = 0;
    int64_t progress_ns = 0;
  };
  using Ready = std::pair<int64_t, size_t>;  // (ready time, pair)

  // Queues pair `p` for its next call: picks the direction whose caller the
  // limits let ring first.
  void Queue(size_t p, int64_t now_ns, int64_t not_before_ns);
  int64_t DirectionReadyAt(const Pair& pair, int caller_index, int64_t now_ns) const;
  void StartCall(size_t p, int64_t now_ns, RunPhase phase);
  // The call of pair `p` failed with `why`: counted; the pair rings again
  // after a pause, or is retired when its state is unknown.
  void FailCall(size_t p, int64_t now_ns, std::string_view why, bool retire);
  void MaybeComplete(size_t p, int64_t now_ns, RunPhase phase);
  // The pair of `client`'s user with a call in flight, or nullptr.
  Pair* InCallPair(const SioClient& client);
  // Checks the packet's callId against the pair's (learning it if unknown);
  // false (and counted) on a mismatch.
  bool MatchCallId(Pair& pair, std::string_view packet);

  CallDriverOptions options_;
  std::vector<User> users_;
  std::vector<int64_t> user_pair_;  // user -> pair, -1 for none
  std::vector<Pair> pairs_;
  std::priority_queue<Ready, std::vector<Ready>, std::greater<>> ready_;
  size_t in_flight_ = 0;
  // Fixed rate: when the schedule began and how many starts it has made.
  int64_t schedule_start_ns_ = 0;
  uint64_t scheduled_ = 0;
  bool scheduling_ = false;
  bool begun_ = false;  // pairs queued (at the first Tick past kConnect)
  // Fixed rate: why the last due start could not be made, until a start is
  // on time again.
  enum class Wait : uint8_t { kNone, kLimits, kBusy };
  Wait waiting_ = Wait::kNone;
  // Closed loop: whether the last Tick left the window short because of the
  // limits, and when it ran.
  bool limited_ = false;
  int64_t last_tick_ns_ = 0;
  int64_t last_timeout_scan_ns_ = 0;
  CallStats stats_;
  std::string payload_;  // scratch
};

}  // namespace turnkey::bench
