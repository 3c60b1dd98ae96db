// PostHttpJob: the usual way an HTTP handler runs blocking work.
//
//   PostHttpJob(queue, loop, std::move(responder),
//               [store] { return store->FindUser(id); },             // worker thread
//               [](Responder responder, UserResult user) {            // loop thread
//                 responder.Respond(...);
//               });
//
// Runs `job` on `queue`, then `done(responder, result)` (or
// `done(responder)` for a void job) on `loop`. When the queue is full or shut
// down it answers `busy` (default 503 with Retry-After: 1) at once and
// returns false. Loop thread only (the Responder's).
#pragma once

#include <utility>

#include "net/event_loop.h"
#include "net/http_response.h"
#include "net/responder.h"
#include "net/work_queue.h"

namespace turnkey::net {

inline HttpResponse DefaultBusyResponse() {
  HttpResponse busy = HttpResponse::Error(503);
  busy.headers.Set("Retry-After", "1");
  return busy;
}

// PostHttpJob's `done` wrapper; holds the Responder until the job is done.
template <typename Done>
struct HttpJobCompletion {
  Responder responder;
  Done done;
  template <typename... Result>
  void operator()(Result&&... result) {
    done(std::move(responder), std::forward<Result>(result)...);
  }
};

template <typename Job, typename Done>
bool PostHttpJob(WorkQueue& queue, EventLoop& loop, Responder responder, Job job, Done done,
                 HttpResponse busy = DefaultBusyResponse()) {
  // A named callable (not a lambda) so the responder can be taken back when
  // the queue refuses: TryPost leaves its arguments alone then.
  HttpJobCompletion<Done> finish{std::move(responder), std::move(done)};
  if (queue.TryPost(loop, std::move(job), std::move(finish))) {
    return true;
  }
  finish.responder.Respond(std::move(busy));
  return false;
}

}  // namespace turnkey::net
