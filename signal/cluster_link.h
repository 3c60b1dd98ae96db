// ClusterLink: one signaling node's link to the others through Redis
// (DESIGN.md section 9).
//
// Nodes with the same cluster name share a Redis server. One of them is the
// coordinator: it holds the key <name>:coordinator, a lease of node_timeout
// that it renews every node_timeout/5 (a Lua script claims the key when it
// is free, renews it when it is ours, and answers the holder either way).
// The others only read the key while they hear the coordinator's heartbeats
// and claim it once it has been quiet for node_timeout (or none is known),
// so after a Redis restart, which loses the key, the same node takes it back.
// A coordinator that could not renew for 3/4 of the lease steps down before
// anyone else can take the key. Every node subscribes to its own channel
// <name>:node:<id> and to <name>:all; at every tick the coordinator says it
// is alive on <name>:all and the others say so to the coordinator, which
// reports a node it has not heard from for node_timeout as gone. A node that becomes the
// coordinator, or a coordinator whose subscription was re-made (it may have missed messages), says
// so on <name>:all ("coord"): the others take it as their coordinator at once and the CallService
// sends it their sockets again; so does a node whose command connection was re-made (what it
// published meanwhile is lost).
//
// Messages are JSON objects with "t" (type) and "n" (the sender's node id,
// added here); what they mean is the CallService's business. One Redis
// connection publishes everything, so two messages from one node reach a
// subscriber in the order they were sent.
//
// Loop thread only, from Create to destruction.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <unordered_map>

#include "base/clock.h"
#include "net/redis_client.h"
#include "net/timer.h"

namespace turnkey::signal {

struct ClusterLinkOptions {
  // Prefix of the keys and channels.
  std::string name = "turnkey";
  // The coordinator's lease, and how long a silent node is still counted.
  std::chrono::milliseconds node_timeout{5000};
  net::RedisOptions redis;
  // This node's id; "" = 16 random hex digits.
  std::string node_id;
  // A digest of what every node must share (the access-token key), sent in
  // the heartbeats: a node that hears another's differ logs an error naming
  // it (the cluster goes on; "" = no check).
  std::string settings_check;
};

class ClusterLink {
 public:
  using Json = nlohmann::ordered_json;
  struct Handlers {
    // A message from another node, sent to this node or to all.
    std::function<void(const std::string& from, Json message)> message;
    // This node became (true) or stopped being (false) the coordinator.
    std::function<void(bool coordinator)> role;
    // The coordinator other nodes' messages should go to changed ("" =
    // none known). Not called for this node itself becoming it (`role`).
    std::function<void(const std::string& coordinator)> coordinator;
    // On the coordinator: `node` has not been heard from for node_timeout.
    std::function<void(const std::string& node)> node_gone;
    // Not the coordinator: the subscription was lost and made again, so
    // answers sent to this node meanwhile are gone.
    std::function<void()> resubscribed;
  };

  static std::unique_ptr<ClusterLink> Create(net::EventLoop& loop, const base::Clock& clock,
                                             ClusterLinkOptions options, Handlers handlers);
  ~ClusterLink();
  ClusterLink(const ClusterLink&) = delete;
  ClusterLink& operator=(const ClusterLink&) = delete;

  const std::string& node_id() const { return options_.node_id; }
  bool is_coordinator() const { return coordinator_ == options_.node_id && !coordinator_.empty(); }
  // The current coordinator's id, "" if none is known.
  const std::string& coordinator() const { return coordinator_; }
  // Connected, subscribed, a coordinator known, Redis answering (a lease
  // query answered within node_timeout) and, on a follower, the
  // coordinator's heartbeats heard within node_timeout: messages can flow.
  // (A Redis that hangs without closing the connection, or a subscription
  // that stopped delivering, fails the last two.)
  bool ready() const;
  // Why not ready(), for /readyz; "" when ready.
  std::string NotReadyReason() const;
  // Redis takes what is published now (the command connection is up).
  bool connected() const;
  // When the lease last renewed runs out: a coordinator that steps down after
  // a freeze (SIGSTOP, swapping) held its calls no longer than this.
  base::MonoTime lease_end() const { return renewed_at_ + options_.node_timeout; }
  // On the coordinator: the nodes heard from within node_timeout, itself
  // included; else 0.
  size_t nodes() const { return is_coordinator() ? last_heard_.size() + 1 : 0; }
  // The nodes whose last heartbeat carried another settings_check (the
  // coordinator hears every node, the others the coordinator).
  const std::set<std::string>& nodes_with_other_settings() const { return other_settings_; }

  // Each adds "n" and publishes; false when it cannot be sent now (no Redis
  // connection, or no coordinator known).
  bool SendTo(const std::string& node, Json message);
  // The same, and `heard` runs with whether a subscriber of that node's
  // channel got it (false too when the connection went before Redis
  // answered). A node whose subscription is being made again hears nothing.
  bool SendTo(const std::string& node, Json message, std::function<void(bool heard)> heard);
  bool SendToCoordinator(Json message);
  bool Broadcast(Json message);

  // On the coordinator: steps down (the role handler runs) when the lease
  // was last renewed 3/4 of node_timeout ago, which the ticks do too. Call it
  // before acting as the coordinator on a client's event: a process that was
  // frozen (SIGSTOP, swapping) may find its lease long gone. True while this
  // node is the coordinator.
  bool CheckLease();
  // Sends a command after everything published so far; flushed() turns
  // true when Redis answered it (at once without a connection).
  void Flush();
  bool flushed() const { return flushed_; }
  // Gives the lease up (when held) and stops the ticks, for a shutdown: this
  // node is no coordinator and knows none from now on (no handler runs);
  // messages still go both ways.
  void Stop();

  // For make_unique; use Create.
  ClusterLink(net::EventLoop& loop, const base::Clock& clock, ClusterLinkOptions options,
              Handlers handlers);

 private:
  void Start();
  void Tick();
  void OnHolder(const std::string& holder, base::MonoTime asked_at);
  void SetCoordinator(const std::string& holder);
  void OnMessage(std::string_view channel, std::string_view text);
  // A heartbeat of `node`: its settings_check against ours.
  void CheckSettings(const std::string& node, const Json& heartbeat);
  // `done` gets Redis's answer (PUBLISH: how many subscribers got it).
  bool Publish(const std::string& channel, Json message, net::RedisConnection::ReplyFn done = {});
  // Tells every node this one is the coordinator ("coord"): they send their
  // sockets again.
  void AnnounceCoordinator();
  std::string ChannelOf(const std::string& node) const;

  net::EventLoop& loop_;
  const base::Clock& clock_;
  ClusterLinkOptions options_;
  Handlers handlers_;
  std::string all_channel_;
  std::string lease_key_;
  std::unique_ptr<net::RedisConnection> commands_;
  std::unique_ptr<net::RedisSubscriber> subscriber_;
  std::unique_ptr<net::Timer> ticker_;
  std::string coordinator_;
  // A follower: when the coordinator was last heard from (its heartbeats).
  base::MonoTime coordinator_heard_{};
  // When Redis last answered a lease query (every tick asks one).
  base::MonoTime answered_at_{};
  std::string logged_coordinator_;
  // The command connection was re-made: tell the CallService the
  // coordinator again (it re-sends its sockets) at the next lease answer.
  bool resync_ = false;
  bool flushed_ = true;
  bool was_subscribed_ = false;  // the subscription was lost at least once
  // When the last renewal that succeeded was sent (the lease runs from no
  // earlier than that).
  base::MonoTime renewed_at_{};
  // Coordinator: other nodes by id -> when last heard from.
  std::unordered_map<std::string, base::MonoTime> last_heard_;
  std::set<std::string> other_settings_;
  bool stopped_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace turnkey::signal
