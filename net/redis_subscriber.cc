// RedisSubscriber (declared in redis_client.h).
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <climits>
#include <utility>

#include "net/redis_client.h"
#include "net/redis_link.h"
#include "net/timer.h"

namespace turnkey::net {

std::unique_ptr<RedisSubscriber> RedisSubscriber::Create(EventLoop& loop, RedisOptions options,
                                                         std::string name,
                                                         std::vector<std::string> channels,
                                                         MessageFn on_message) {
  std::unique_ptr<RedisSubscriber> sub(new RedisSubscriber());
  RedisSubscriber* self = sub.get();
  sub->channels_ = std::move(channels);
  sub->on_message_ = std::make_shared<const MessageFn>(std::move(on_message));
  sub->subscribe_timer_ = std::make_unique<Timer>(
      loop, [self] { self->link_->Fail("SUBSCRIBE not confirmed within connect_timeout"); });
  RedisLink::Hooks hooks{
      .on_ready = [self](redisAsyncContext* ac) { self->OnReady(ac); },
      .on_lost = [self] { self->OnLost(); },
  };
  sub->link_ =
      std::make_unique<RedisLink>(loop, std::move(options), std::move(name), std::move(hooks));
  sub->link_->Start();
  return sub;
}

RedisSubscriber::~RedisSubscriber() = default;

bool RedisSubscriber::subscribed() const { return subscribed_; }

void RedisSubscriber::SetStateHandler(std::function<void(bool subscribed)> handler) {
  link_->SetStateHandler(std::move(handler));
}

void RedisSubscriber::OnReady(redisAsyncContext* ac) {
  confirmed_.clear();
  if (channels_.empty()) {
    subscribed_ = true;
    link_->NotifyState(true);
    return;
  }
  if (channels_.size() >= INT_MAX) {
    link_->Fail("too many channels");
    return;
  }
  std::vector<const char*> argv{"SUBSCRIBE"};
  std::vector<size_t> lens{9};
  for (const std::string& channel : channels_) {
    argv.push_back(channel.data());
    lens.push_back(channel.size());
  }
  // hiredis registers the callback once per channel; it then gets that
  // channel's "subscribe" confirmation and every "message" on it.
  if (redisAsyncCommandArgv(ac, &RedisSubscriber::OnSubscribeReply, this,
                            static_cast<int>(argv.size()), argv.data(), lens.data()) != REDIS_OK) {
    link_->Fail("SUBSCRIBE could not be queued");
    return;
  }
  subscribe_timer_->Start(link_->options().connect_timeout);
}

void RedisSubscriber::OnLost() {
  subscribe_timer_->Stop();
  confirmed_.clear();
  if (subscribed_) {
    subscribed_ = false;
    link_->NotifyState(false);
  }
}

void RedisSubscriber::OnSubscribeReply(redisAsyncContext* ac, void* reply,
                                       void* privdata) noexcept {
  RedisLink* link = RedisLink::FromContext(ac);
  // A null reply: the context is going away (OnLost handles that). A context
  // that is no longer the ready one was given up: ignore what it still reads.
  if (link == nullptr || reply == nullptr || link->ready_context() != ac) {
    return;
  }
  static_cast<RedisSubscriber*>(privdata)->HandleSubscribeReply(
      *static_cast<const redisReply*>(reply));
}

void RedisSubscriber::HandleSubscribeReply(const redisReply& reply) {
  if (reply.type == REDIS_REPLY_ERROR) {
    link_->Fail(fmt::format("SUBSCRIBE refused: {}", std::string_view(reply.str, reply.len)));
    return;
  }
  // Pub/sub pushes are arrays: ["subscribe", channel, count] or
  // ["message", channel, payload].
  if (reply.type != REDIS_REPLY_ARRAY || reply.elements < 3 ||
      reply.element[0]->type != REDIS_REPLY_STRING ||
      reply.element[1]->type != REDIS_REPLY_STRING) {
    return;
  }
  const std::string_view kind(reply.element[0]->str, reply.element[0]->len);
  std::string channel(reply.element[1]->str, reply.element[1]->len);
  if (kind == "message") {
    const redisReply& payload = *reply.element[2];
    if (payload.type != REDIS_REPLY_STRING) {
      return;
    }
    link_->Defer([handler = on_message_, channel = std::move(channel),
                  message = std::string(payload.str, payload.len)] {
      // `handler` is ours: it survives a call that destroys the subscriber.
      if (*handler) {
        (*handler)(channel, message);
      }
    });
    return;
  }
  if (kind != "subscribe" || subscribed_) {
    return;
  }
  if (std::find(confirmed_.begin(), confirmed_.end(), channel) == confirmed_.end()) {
    confirmed_.push_back(std::move(channel));
  }
  const bool all = std::all_of(channels_.begin(), channels_.end(), [this](const std::string& c) {
    return std::find(confirmed_.begin(), confirmed_.end(), c) != confirmed_.end();
  });
  if (all) {
    subscribe_timer_->Stop();
    subscribed_ = true;
    TK_LOG_INFO("redis({}): subscribed to {} channel(s)", link_->name(), channels_.size());
    link_->NotifyState(true);
  }
}

}  // namespace turnkey::net
