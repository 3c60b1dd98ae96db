#include "signal/cluster_link.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "base/crypto.h"
#include "base/log.h"

namespace turnkey::signal {
namespace {

// Claims the lease when nobody holds it, renews it when we do; answers the
// holder. KEYS[1] the lease, ARGV[1] our id, ARGV[2] the lease in ms.
constexpr std::string_view kClaimScript =
    "local v = redis.call('GET', KEYS[1]) "
    "if not v then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) return ARGV[1] end "
    "if v == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end "
    "return v";
// Gives the lease up if we hold it.
constexpr std::string_view kReleaseScript =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
    "return 0";

constexpr std::chrono::milliseconds kMinTick{100};

// A coordinator has 3/4 of node_timeout to renew: a Redis restart must not
// leave it waiting seconds between two attempts.
ClusterLinkOptions WithQuickReconnect(ClusterLinkOptions options) {
  options.redis.reconnect_max = std::clamp<std::chrono::milliseconds>(
      options.node_timeout / 10, kMinTick, std::max(kMinTick, options.redis.reconnect_max));
  options.redis.reconnect_min = std::min(options.redis.reconnect_min, options.redis.reconnect_max);
  return options;
}

}  // namespace

std::unique_ptr<ClusterLink> ClusterLink::Create(net::EventLoop& loop, const base::Clock& clock,
                                                 ClusterLinkOptions options, Handlers handlers) {
  if (options.node_id.empty()) {
    options.node_id = base::RandomHex(8);
  }
  auto link = std::make_unique<ClusterLink>(loop, clock, std::move(options), std::move(handlers));
  link->Start();
  return link;
}

ClusterLink::ClusterLink(net::EventLoop& loop, const base::Clock& clock, ClusterLinkOptions options,
                         Handlers handlers)
    : loop_(loop),
      clock_(clock),
      options_(WithQuickReconnect(std::move(options))),
      handlers_(std::move(handlers)),
      all_channel_(options_.name + ":all"),
      lease_key_(options_.name + ":coordinator") {}

ClusterLink::~ClusterLink() {
  *alive_ = false;
  if (ticker_) {
    ticker_->Stop();
  }
}

void ClusterLink::Start() {
  TK_LOG_INFO("cluster: node {} joins cluster \"{}\" through redis {}:{}", options_.node_id,
              options_.name, options_.redis.host, options_.redis.port);
  commands_ = net::RedisConnection::Create(loop_, options_.redis, "commands");
  commands_->SetStateHandler([this](bool connected) {
    if (!connected || stopped_) {
      return;
    }
    // What this node published while cut off is lost: the next answer
    // about the lease makes the CallService send it everything again. (The
    // coordinator is not forgotten meanwhile, which would let this node
    // claim a lease a Redis restart freed.)
    if (!is_coordinator()) {
      resync_ = true;
    }
    Tick();  // claim or learn the coordinator at once
  });
  subscriber_ = net::RedisSubscriber::Create(
      loop_, options_.redis, "subscriber", {all_channel_, ChannelOf(options_.node_id)},
      [this](std::string_view channel, std::string_view text) { OnMessage(channel, text); });
  subscriber_->SetStateHandler([this](bool subscribed) {
    if (!subscribed) {
      was_subscribed_ = true;
      return;
    }
    // A coordinator that missed messages asks every node to say again
    // which sockets it has; another node's answers may have been lost.
    if (is_coordinator()) {
      AnnounceCoordinator();
    } else if (was_subscribed_ && handlers_.resubscribed) {
      handlers_.resubscribed();
    }
  });
  ticker_ = std::make_unique<net::Timer>(loop_, [this] { Tick(); });
  ticker_->StartPeriodic(std::max<std::chrono::milliseconds>(options_.node_timeout / 5, kMinTick));
}

bool ClusterLink::ready() const { return NotReadyReason().empty(); }

std::string ClusterLink::NotReadyReason() const {
  if (stopped_) {
    return "cluster link stopped";
  }
  if (!commands_->connected()) {
    const std::string& why = commands_->last_failure();
    return why.empty() ? "no connection to redis" : "no connection to redis: " + why;
  }
  if (!subscriber_->subscribed()) {
    return "not subscribed to the cluster's channels";
  }
  if (coordinator_.empty()) {
    return "no cluster coordinator known";
  }
  const base::MonoTime now = clock_.Now();
  if (now - answered_at_ > options_.node_timeout) {
    return fmt::format("redis has not answered for over {} ms", options_.node_timeout.count());
  }
  if (!is_coordinator() && now - coordinator_heard_ > options_.node_timeout) {
    return fmt::format("the coordinator {} has not been heard from for over {} ms", coordinator_,
                       options_.node_timeout.count());
  }
  return "";
}

std::string ClusterLink::ChannelOf(const std::string& node) const {
  return options_.name + ":node:" + node;
}

void ClusterLink::Tick() {
  if (stopped_) {
    return;
  }
  const base::MonoTime now = clock_.Now();
  if (CheckLease()) {
    std::vector<std::string> gone;
    for (const auto& [node, heard] : last_heard_) {
      if (now - heard > options_.node_timeout) {
        gone.push_back(node);
      }
    }
    for (const std::string& node : gone) {
      last_heard_.erase(node);
      other_settings_.erase(node);
      TK_LOG_WARN("cluster: node {} not heard from for {} ms; its sockets are gone", node,
                  options_.node_timeout.count());
      if (handlers_.node_gone) {
        handlers_.node_gone(node);
      }
    }
  }
  if (!commands_->connected()) {
    return;
  }
  // Alive: the coordinator to every node, the others to the coordinator.
  Json alive = Json::object();
  alive["t"] = "hb";
  if (!options_.settings_check.empty()) {
    alive["k"] = options_.settings_check;
  }
  if (is_coordinator()) {
    Broadcast(std::move(alive));
  } else if (!coordinator_.empty()) {
    SendTo(coordinator_, std::move(alive));
  }
  // A node claims a free lease only when no coordinator is known or it has
  // gone quiet: after a Redis restart (the lease is not persisted) the
  // coordinator that is still there takes its lease back, and its calls go
  // on, instead of whichever node ticks first.
  const bool may_claim =
      is_coordinator() || coordinator_.empty() || now - coordinator_heard_ > options_.node_timeout;
  std::vector<std::string> command =
      may_claim ? std::vector<std::string>{"EVAL",
                                           std::string(kClaimScript),
                                           "1",
                                           lease_key_,
                                           options_.node_id,
                                           std::to_string(options_.node_timeout.count())}
                : std::vector<std::string>{"GET", lease_key_};
  commands_->Command(std::move(command), [this, alive = alive_,
                                          asked_at = now](base::Result<net::RedisReply> reply) {
    if (!*alive) {
      return;
    }
    if (!reply) {
      return;  // the connection's state handler logs
    }
    answered_at_ = std::max(answered_at_, clock_.Now());
    if (reply->type == net::RedisReply::Type::kNil) {
      return;  // free, and not ours to take yet
    }
    if (reply->type != net::RedisReply::Type::kString) {
      TK_LOG_WARN_EVERY(
          std::chrono::seconds(10), "cluster: the lease query answered {}",
          reply->type == net::RedisReply::Type::kError ? reply->str : "an unexpected type");
      return;
    }
    OnHolder(reply->str, asked_at);
  });
}

bool ClusterLink::CheckLease() {
  if (!is_coordinator()) {
    return false;
  }
  // Stop acting before the lease can have run out in Redis.
  if (clock_.Now() - renewed_at_ > options_.node_timeout * 3 / 4) {
    TK_LOG_WARN("cluster: node {} could not renew its coordinator lease; stepping down",
                options_.node_id);
    SetCoordinator("");
    return false;
  }
  return true;
}

void ClusterLink::OnHolder(const std::string& holder, base::MonoTime asked_at) {
  if (stopped_) {
    return;
  }
  if (holder == options_.node_id) {
    renewed_at_ = std::max(renewed_at_, asked_at);
  }
  if (resync_ && holder == coordinator_ && !is_coordinator()) {
    resync_ = false;
    if (handlers_.coordinator) {
      handlers_.coordinator(holder);
    }
    return;
  }
  resync_ = false;
  SetCoordinator(holder);
}

void ClusterLink::SetCoordinator(const std::string& holder) {
  if (holder == coordinator_) {
    return;
  }
  const bool was = is_coordinator();
  coordinator_ = holder;
  coordinator_heard_ = clock_.Now();
  const bool is = is_coordinator();
  if (was != is) {
    last_heard_.clear();
    TK_LOG_INFO("cluster: node {} {} the call coordinator", options_.node_id,
                is ? "is now" : "is no longer");
    if (handlers_.role) {
      handlers_.role(is);
    }
    if (is) {
      AnnounceCoordinator();
    }
  }
  if (!is) {
    if (!holder.empty() && holder != logged_coordinator_) {
      TK_LOG_INFO("cluster: node {} is the call coordinator", holder);
    }
    logged_coordinator_ = holder.empty() ? logged_coordinator_ : holder;
    if (handlers_.coordinator) {
      handlers_.coordinator(holder);
    }
  }
}

void ClusterLink::OnMessage(std::string_view channel, std::string_view text) {
  Json message = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!message.is_object()) {
    TK_LOG_WARN_EVERY(std::chrono::seconds(10), "cluster: a message on {} is not a JSON object",
                      channel);
    return;
  }
  auto from = message.find("n");
  auto type = message.find("t");
  if (from == message.end() || !from->is_string() || type == message.end() || !type->is_string()) {
    TK_LOG_WARN_EVERY(std::chrono::seconds(10), "cluster: a message on {} has no sender or type",
                      channel);
    return;
  }
  std::string node = from->get<std::string>();
  if (node == options_.node_id) {
    return;  // our own broadcast
  }
  bool back = false;
  if (is_coordinator()) {
    last_heard_[node] = clock_.Now();
  } else if (node == coordinator_) {
    // Heard again after a silence the coordinator has taken for this
    // node's end (Redis hung, or this process was frozen): it dropped this
    // node's sockets, so they are sent again.
    back = coordinator_heard_ != base::MonoTime{} &&
           clock_.Now() - coordinator_heard_ > options_.node_timeout;
    coordinator_heard_ = clock_.Now();
  }
  if (back && !stopped_) {
    TK_LOG_INFO("cluster: node {} hears the coordinator {} again; sending its sockets again",
                options_.node_id, node);
    if (handlers_.coordinator) {
      handlers_.coordinator(node);
    }
  }
  const std::string& kind = type->get_ref<const std::string&>();
  if (kind == "hb") {
    CheckSettings(node, message);
    return;
  }
  if (kind == "resign") {
    if (node == coordinator_ && !stopped_) {
      coordinator_heard_ = base::MonoTime{};
      Tick();
    }
    return;
  }
  if (kind == "coord") {
    // A node that took the lease (or missed messages) wants every node's
    // sockets: learn it now rather than at the next tick, and sync again
    // even when it was known. The lease, not this, makes a coordinator.
    if (!is_coordinator() && !stopped_) {
      coordinator_.clear();
      SetCoordinator(node);
    }
    return;
  }
  if (handlers_.message) {
    handlers_.message(node, std::move(message));
  }
}

void ClusterLink::CheckSettings(const std::string& node, const Json& heartbeat) {
  auto check = heartbeat.find("k");
  if (options_.settings_check.empty() || check == heartbeat.end() || !check->is_string()) {
    return;
  }
  if (check->get_ref<const std::string&>() == options_.settings_check) {
    other_settings_.erase(node);
    return;
  }
  // Which of the two is wrong, only the operator knows; both say so.
  if (other_settings_.insert(node).second) {
    TK_LOG_ERROR(
        "cluster: node {} signs access tokens with another signal.jwt secret than this node {}: "
        "each refuses the tokens the other issued (401 TOKEN_INVALID); give every node the same "
        "signal.jwt.secret_file",
        node, options_.node_id);
  }
}

bool ClusterLink::Publish(const std::string& channel, Json message,
                          net::RedisConnection::ReplyFn done) {
  if (!commands_->connected()) {
    return false;
  }
  message["n"] = options_.node_id;
  commands_->Command({"PUBLISH", channel, message.dump()}, std::move(done));
  return true;
}

bool ClusterLink::SendTo(const std::string& node, Json message) {
  return Publish(ChannelOf(node), std::move(message));
}

bool ClusterLink::SendTo(const std::string& node, Json message,
                         std::function<void(bool heard)> heard) {
  // PUBLISH answers how many subscribers got the message.
  return Publish(
      ChannelOf(node), std::move(message),
      [heard = std::move(heard)](base::Result<net::RedisReply> reply) {
        heard(reply && reply->type == net::RedisReply::Type::kInteger && reply->integer > 0);
      });
}

bool ClusterLink::connected() const { return commands_->connected(); }

bool ClusterLink::SendToCoordinator(Json message) {
  if (coordinator_.empty() || is_coordinator()) {
    return false;
  }
  return SendTo(coordinator_, std::move(message));
}

bool ClusterLink::Broadcast(Json message) { return Publish(all_channel_, std::move(message)); }

void ClusterLink::Flush() {
  if (!commands_->connected()) {
    flushed_ = true;
    return;
  }
  flushed_ = false;
  commands_->Command({"PING"}, [this, alive = alive_](base::Result<net::RedisReply> /*reply*/) {
    if (*alive) {
      flushed_ = true;  // answered, or the connection went: nothing more to wait for
    }
  });
}

void ClusterLink::AnnounceCoordinator() {
  Json told = Json::object();
  told["t"] = "coord";
  Broadcast(std::move(told));
}

void ClusterLink::Stop() {
  if (stopped_) {
    return;
  }
  if (is_coordinator() && commands_->connected()) {
    commands_->Command({"EVAL", std::string(kReleaseScript), "1", lease_key_, options_.node_id});
    // After the release (one connection: in order), so the others claim it
    // now rather than once they miss the heartbeats.
    Json resign = Json::object();
    resign["t"] = "resign";
    Broadcast(std::move(resign));
  }
  stopped_ = true;
  ticker_->Stop();
  if (is_coordinator()) {
    // Whoever takes the lease now coordinates: requests still sent here
    // are answered Server busy, and this node's own go nowhere. A node
    // that is not the coordinator keeps telling it of its sockets' ends.
    coordinator_.clear();
  }
}

}  // namespace turnkey::signal
