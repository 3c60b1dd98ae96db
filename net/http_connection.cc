#include "net/http_connection.h"

#include <cassert>
#include <exception>
#include <string_view>

#include "base/log.h"
#include "net/event_loop.h"
#include "net/forwarded.h"
#include "net/http_server.h"
#include "net/responder.h"

namespace turnkey::net {

namespace {

constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

}  // namespace

HttpConnection::HttpConnection(HttpServer& server, StreamConnection& stream)
    : server_(server),
      stream_(stream),
      parser_(server.options_),
      idle_timer_(server.loop_, [this] { OnIdleTimeout(); }),
      header_timer_(server.loop_, [this] { OnHeaderTimeout(); }) {}

void HttpConnection::Start() {
  stream_.SetCallbacks([this](StreamConnection&, base::ByteView data) { return OnData(data); },
                       [this](StreamConnection&, CloseReason reason) { OnClose(reason); });
  ArmIdleTimer();
}

void HttpConnection::SetState(State next) {
  // reading <-> handling; handling -> upgraded; reading or handling ->
  // closing or closed; closing -> closed. Upgraded and closed are final.
  bool legal = false;
  switch (state_) {
    case State::kReading:
      legal = next == State::kHandling || next == State::kClosing || next == State::kClosed;
      break;
    case State::kHandling:
      legal = next == State::kReading || next == State::kUpgraded || next == State::kClosing ||
              next == State::kClosed;
      break;
    case State::kClosing:
      legal = next == State::kClosed;
      break;
    case State::kUpgraded:
    case State::kClosed:
      legal = false;
      break;
  }
  assert(legal);
  if (legal) {
    state_ = next;
  }
  if (state_ != State::kHandling) {
    on_lost_ = nullptr;  // the request it watched is answered, handed over or gone
  }
  if (state_ != State::kReading) {
    idle_timer_.Stop();
    header_timer_.Stop();
    // The request being read is complete (about to be handled), failed or
    // gone: its body no longer pends.
    body_announced_ = false;
    body_token_.reset();
    body_limit_ = UINT64_MAX;
  }
}

void HttpConnection::ArmIdleTimer() {
  if (server_.options_.idle_timeout.count() > 0) {
    idle_timer_.Start(server_.options_.idle_timeout);
  }
}

size_t HttpConnection::OnData(base::ByteView data) {
  if (state_ != State::kReading) {
    return 0;
  }
  ArmIdleTimer();
  const HttpRequestParser::Result result = parser_.Parse(data);
  switch (result.status) {
    case HttpRequestParser::Status::kNeedMore:
      if (parser_.in_progress() && !parser_.head_complete()) {
        if (!header_timer_.IsRunning() && server_.options_.header_timeout.count() > 0) {
          header_timer_.Start(server_.options_.header_timeout);
        }
      } else if (parser_.head_complete()) {
        if (!body_announced_) {
          // The head is in: the same timer now bounds the body.
          header_timer_.Stop();
          if (server_.options_.body_timeout.count() > 0) {
            header_timer_.Start(server_.options_.body_timeout);
          }
        }
      } else if (!header_timer_.IsRunning() && server_.options_.header_timeout.count() > 0) {
        // Only empty lines so far (RFC 9112 section 2.2 has them skipped): a
        // client sending nothing else is cut as a slow head would be.
        header_timer_.Start(server_.options_.header_timeout);
      }
      if (parser_.head_complete()) {
        const bool announcing = !body_announced_;
        if (announcing) {
          body_announced_ = true;
          if (server_.options_.body_limit) {
            body_limit_ = server_.options_.body_limit(*parser_.head());
          }
        }
        // What the head declares, or (chunked) what has arrived so far: over
        // the limit, refused now rather than once it is all in.
        const uint64_t body = parser_.content_length().value_or(parser_.head()->body.size());
        if (body > body_limit_) {
          ++server_.stats_.bad_requests;
          TK_LOG_DEBUG("http connection {} from {}: a body of {} bytes is over the limit for {}",
                       stream_.id(), stream_.peer_address().ToString(), body, parser_.head()->path);
          FailAndClose(413, parser_.head());
          return data.size();
        }
        if (announcing && server_.options_.on_body_pending) {
          body_token_ = server_.options_.on_body_pending(*parser_.head());
        }
      }
      if (parser_.TakeContinueRequest()) {
        stream_.Write(base::AsBytes(kContinue));
      }
      return result.consumed;
    case HttpRequestParser::Status::kError:
      ++server_.stats_.bad_requests;
      TK_LOG_DEBUG("http connection {} from {}: {} ({})", stream_.id(),
                   stream_.peer_address().ToString(), HttpParseErrorName(parser_.error()),
                   parser_.error_detail());
      FailAndClose(HttpParseErrorStatus(parser_.error()), parser_.head());
      return data.size();
    case HttpRequestParser::Status::kRequest:
      Dispatch(parser_.TakeRequest());
      return result.consumed;
  }
  return result.consumed;
}

void HttpConnection::Evict() {
  TK_LOG_DEBUG("http connection {} from {}: closed for a newer one (max_fresh_connections)",
               stream_.id(), stream_.peer_address().ToString());
  stream_.Abort();
}

void HttpConnection::Dispatch(HttpRequest request) {
  if (sequence_ == 0) {
    server_.fresh_.erase(stream_.id());  // it asked something: no longer fresh
  }
  ++sequence_;
  const uint64_t sequence = sequence_;
  pending_ = Pending{request.method == "HEAD", request.keep_alive, request.upgrade,
                     request.version_major == 1 && request.version_minor == 0};
  request.peer = stream_.peer_address();
  if (!server_.options_.trusted_proxies.empty()) {
    request.peer = ForwardedClient(request, server_.options_.trusted_proxies);
  }
  request.tls = stream_.is_tls();
  SetState(State::kHandling);
  // Pipelining: the next request stays unread until this one is answered,
  // which keeps answers in order and applies TCP backpressure.
  stream_.PauseReading();
  ++server_.stats_.requests;
  try {
    server_.handler_(std::move(request), Responder(server_.loop_, weak_from_this(), sequence));
  } catch (const std::exception& e) {
    TK_LOG_ERROR("http handler threw: {}", e.what());
    Respond(sequence, HttpResponse::Error(500));
  } catch (...) {
    TK_LOG_ERROR("http handler threw a non-standard exception");
    Respond(sequence, HttpResponse::Error(500));
  }
}

bool HttpConnection::IsPending(uint64_t sequence) const {
  return state_ == State::kHandling && sequence == sequence_;
}

int HttpConnection::Respond(uint64_t sequence, HttpResponse response) {
  if (!IsPending(sequence)) {
    return 0;
  }
  if (response.status < 200 || response.status > 999) {
    TK_LOG_ERROR("http handler answered status {}; sending 500", response.status);
    response = HttpResponse::Error(500);
  }
  const bool close = !pending_.keep_alive || pending_.upgrade || close_after_response_ ||
                     server_.stopping_ || response.headers.HasToken("Connection", "close");
  Write(response, pending_.head, close, !close && pending_.http10);
  if (close) {
    // Lingering (RFC 9112 section 9.6): the client may already be sending
    // more behind the request (a pipelined one, a refused upgrade's new
    // protocol), never to be read; closing on it would reset the connection
    // and could cost the client this answer.
    CloseStream(true);
    return response.status;
  }
  SetState(State::kReading);
  ArmIdleTimer();
  // Offers the bytes of a pipelined request that arrived meanwhile, once
  // this answer is sent: a client that pipelines requests without reading
  // the answers would otherwise have each one queued (up to the output
  // limit, 4 MiB) for a few bytes of request.
  stream_.ResumeReadingOnceSent();
  return response.status;
}

void HttpConnection::Abandon(uint64_t sequence) {
  if (IsPending(sequence)) {
    TK_LOG_WARN("http request on connection {} dropped unanswered; sending 500", stream_.id());
    Respond(sequence, HttpResponse::Error(500));
  }
}

void HttpConnection::WatchLost(uint64_t sequence, std::function<void()> on_lost) {
  if (!IsPending(sequence)) {
    return;
  }
  on_lost_ = std::move(on_lost);
  stream_.WatchForPeerClose();
}

StreamConnection* HttpConnection::TakeOver(uint64_t sequence, const HttpResponse* response) {
  if (!IsPending(sequence) || !pending_.upgrade || close_after_response_ || server_.stopping_) {
    return nullptr;
  }
  if (response != nullptr) {
    Write(*response, false, false, false);
  }
  SetState(State::kUpgraded);
  ++server_.stats_.upgrades;
  // Our callbacks capture `this`, which is about to go; until the new owner
  // installs its own, input waits in the buffer and a close goes unheard.
  stream_.SetCallbacks(nullptr, nullptr);
  // The bytes after the request head are still buffered; they go to the new
  // owner's data callback once it is installed (later in this call stack).
  stream_.ResumeReading();
  StreamConnection* stream = &stream_;
  server_.Forget(stream_.id());
  return stream;
}

void HttpConnection::OnIdleTimeout() {
  if (state_ != State::kReading) {
    return;
  }
  if (parser_.in_progress()) {
    ++server_.stats_.timeouts;
    FailAndClose(408);
  } else {
    CloseStream();
  }
}

void HttpConnection::OnHeaderTimeout() {
  if (state_ != State::kReading) {
    return;
  }
  ++server_.stats_.timeouts;
  if (!parser_.in_progress()) {
    CloseStream();  // empty lines only: no request to answer
    return;
  }
  FailAndClose(408);
}

void HttpConnection::FailAndClose(int status, const HttpRequest* head) {
  std::optional<HttpResponse> custom;
  if (head != nullptr && server_.options_.error_response) {
    custom = server_.options_.error_response(*head, status);
  }
  const HttpResponse& response = custom ? *custom : HttpResponse::Error(status);
  if (server_.options_.on_refused) {
    server_.options_.on_refused(response.status);
  }
  Write(response, false, true, false);
  // The rest of the refused request (a head over the limit, a body) may
  // still be coming; closing on it unread would reset the connection and
  // could cost the client this answer.
  CloseStream(true);
}

void HttpConnection::Write(const HttpResponse& response, bool head_only, bool close,
                           bool keep_alive_header) {
  HttpResponseFraming framing;
  framing.head_only = head_only;
  framing.close = close;
  framing.keep_alive_header = keep_alive_header;
  framing.date = server_.CurrentDate();
  if (stream_.is_tls()) {
    framing.strict_transport_security = server_.options_.strict_transport_security;
  }
  stream_.Write(base::AsBytes(SerializeHttpResponse(response, framing)));
}

void HttpConnection::CloseStream(bool lingering) {
  SetState(State::kClosing);
  if (lingering) {
    stream_.CloseLingering();
  } else {
    stream_.Close();
  }
}

void HttpConnection::Shutdown() {
  switch (state_) {
    case State::kReading:
      CloseStream();
      break;
    case State::kHandling:
      close_after_response_ = true;
      break;
    case State::kUpgraded:
    case State::kClosing:
    case State::kClosed:
      break;
  }
}

void HttpConnection::OnClose(CloseReason /*reason*/) {
  if (state_ == State::kClosed) {
    return;
  }
  std::function<void()> on_lost = std::move(on_lost_);
  SetState(State::kClosed);
  // Releases this object after the current callback (DeleteLater).
  server_.Forget(stream_.id());
  if (on_lost) {
    on_lost();
  }
}

}  // namespace turnkey::net
