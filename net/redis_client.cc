#include "net/redis_client.h"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <climits>
#include <utility>

#include "net/redis_link.h"

namespace turnkey::net {

namespace {

RedisReply ToRedisReply(const redisReply& r) {
  RedisReply out;
  switch (r.type) {
    case REDIS_REPLY_INTEGER:
      out.type = RedisReply::Type::kInteger;
      out.integer = r.integer;
      break;
    case REDIS_REPLY_STRING:
      out.type = RedisReply::Type::kString;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_STATUS:
      out.type = RedisReply::Type::kStatus;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ERROR:
      out.type = RedisReply::Type::kError;
      out.str.assign(r.str, r.len);
      break;
    case REDIS_REPLY_ARRAY:
      out.type = RedisReply::Type::kArray;
      out.elements.reserve(r.elements);
      // hiredis nests arrays at most 7 deep, so the recursion is bounded.
      for (size_t i = 0; i < r.elements; ++i) {
        out.elements.push_back(ToRedisReply(*r.element[i]));
      }
      break;
    default:  // REDIS_REPLY_NIL
      break;
  }
  return out;
}

}  // namespace

std::unique_ptr<RedisConnection> RedisConnection::Create(EventLoop& loop, RedisOptions options,
                                                         std::string name) {
  std::unique_ptr<RedisConnection> conn(new RedisConnection());
  RedisConnection* self = conn.get();
  RedisLink::Hooks hooks{
      .on_ready = [self](redisAsyncContext*) { self->link_->NotifyState(true); },
      .on_lost = [self] { self->link_->NotifyState(false); },
  };
  conn->link_ =
      std::make_unique<RedisLink>(loop, std::move(options), std::move(name), std::move(hooks));
  conn->link_->Start();
  return conn;
}

RedisConnection::~RedisConnection() = default;

bool RedisConnection::connected() const { return link_->ready(); }

const std::string& RedisConnection::last_failure() const { return link_->last_failure(); }

void RedisConnection::SetStateHandler(std::function<void(bool connected)> handler) {
  link_->SetStateHandler(std::move(handler));
}

void RedisConnection::Command(std::vector<std::string> argv, ReplyFn done) {
  base::Error error{base::ErrorCode::kUnavailable, "redis(" + link_->name() + "): not connected"};
  redisAsyncContext* ac = link_->ready_context();
  if (argv.empty() || argv.size() > INT_MAX) {
    error = {base::ErrorCode::kInvalidArgument, "redis: a command needs 1 to INT_MAX arguments"};
  } else if (ac != nullptr) {
    std::vector<const char*> args;
    std::vector<size_t> lens;
    args.reserve(argv.size());
    lens.reserve(argv.size());
    for (const std::string& arg : argv) {
      args.push_back(arg.data());
      lens.push_back(arg.size());
    }
    // hiredis copies the arguments into its output buffer.
    auto pending = done ? std::make_unique<ReplyFn>(std::move(done)) : nullptr;
    if (redisAsyncCommandArgv(ac, pending ? &RedisConnection::OnReply : nullptr, pending.get(),
                              static_cast<int>(args.size()), args.data(),
                              lens.data()) == REDIS_OK) {
      pending.release();  // owned by the callback now
      return;
    }
    if (pending) {
      done = std::move(*pending);
    }
  }
  if (done) {
    link_->Defer([done = std::move(done), error = std::move(error)]() mutable {
      done(std::unexpected(std::move(error)));
    });
  }
}

void RedisConnection::OnReply(redisAsyncContext* ac, void* reply, void* privdata) noexcept {
  std::unique_ptr<ReplyFn> done(static_cast<ReplyFn*>(privdata));
  RedisLink* link = RedisLink::FromContext(ac);
  if (link == nullptr) {
    return;  // the connection is being destroyed: dropped, not called
  }
  base::Result<RedisReply> result =
      reply != nullptr
          ? base::Result<RedisReply>(ToRedisReply(*static_cast<const redisReply*>(reply)))
          : base::Unavailable("redis(" + link->name() + "): connection lost before the reply");
  link->Defer([done = std::move(done), result = std::move(result)]() mutable {
    (*done)(std::move(result));
  });
}

}  // namespace turnkey::net
