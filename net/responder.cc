#include "net/responder.h"

#include "net/event_loop.h"
#include "net/http_connection.h"

namespace turnkey::net {

Responder::~Responder() { Abandon(); }

Responder::Responder(Responder&& other) noexcept
    : loop_(other.loop_),
      connection_(std::move(other.connection_)),
      sequence_(other.sequence_),
      on_answer_(std::move(other.on_answer_)) {
  other.loop_ = nullptr;
  other.connection_.reset();
  other.on_answer_ = nullptr;
}

Responder& Responder::operator=(Responder&& other) noexcept {
  if (this != &other) {
    Abandon();
    loop_ = other.loop_;
    connection_ = std::move(other.connection_);
    sequence_ = other.sequence_;
    on_answer_ = std::move(other.on_answer_);
    other.loop_ = nullptr;
    other.connection_.reset();
    other.on_answer_ = nullptr;
  }
  return *this;
}

void Responder::Respond(HttpResponse response) {
  if (auto connection = connection_.lock(); connection) {
    const int sent = connection->Respond(sequence_, std::move(response));
    if (sent != 0 && on_answer_) {
      on_answer_(sent);
    }
  }
  connection_.reset();
  on_answer_ = nullptr;
}

bool Responder::is_pending() const {
  auto connection = connection_.lock();
  return connection && connection->IsPending(sequence_);
}

void Responder::OnConnectionLost(std::function<void()> on_lost) {
  if (auto connection = connection_.lock()) {
    connection->WatchLost(sequence_, std::move(on_lost));
  }
}

StreamConnection* Responder::TakeOver() { return TakeOverWith(nullptr); }

StreamConnection* Responder::TakeOver(const HttpResponse& response) {
  return TakeOverWith(&response);
}

StreamConnection* Responder::TakeOverWith(const HttpResponse* response) {
  auto connection = connection_.lock();
  if (!connection) {
    return nullptr;
  }
  StreamConnection* stream = connection->TakeOver(sequence_, response);
  if (stream != nullptr) {
    connection_.reset();
    if (on_answer_) {
      on_answer_(101);
      on_answer_ = nullptr;
    }
  }
  return stream;
}

void Responder::Abandon() noexcept {
  // expired() is safe from any thread; lock() is not (the last strong
  // reference must never be dropped off the loop thread), so only the loop
  // thread locks.
  if (loop_ == nullptr || connection_.expired()) {
    connection_.reset();
    return;
  }
  if (loop_->IsInLoopThread()) {
    if (auto connection = connection_.lock(); connection) {
      connection->Abandon(sequence_);
    }
  } else {
    loop_->Post([connection = std::move(connection_), sequence = sequence_] {
      if (auto locked = connection.lock(); locked) {
        locked->Abandon(sequence);
      }
    });
  }
  connection_.reset();
}

}  // namespace turnkey::net
