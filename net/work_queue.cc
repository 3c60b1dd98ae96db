#include "net/work_queue.h"

#include <pthread.h>

#include <exception>
#include <system_error>

#include "base/log.h"

namespace turnkey::net {

base::Result<std::unique_ptr<WorkQueue>> WorkQueue::Create(const WorkQueueOptions& options) {
  if (options.threads == 0 || options.max_queued == 0) {
    return base::InvalidArgument("work queue needs at least one thread and one queue slot");
  }
  std::unique_ptr<WorkQueue> queue(new WorkQueue(options.max_queued));
  try {
    for (size_t i = 0; i < options.threads; ++i) {
      queue->workers_.emplace_back([raw = queue.get()] { raw->WorkerMain(); });
      std::string name = (options.name + "-" + std::to_string(i)).substr(0, 15);
      pthread_setname_np(queue->workers_.back().native_handle(), name.c_str());
    }
  } catch (const std::system_error& e) {
    // The destructor joins the workers that did start.
    return base::Unavailable(std::string("cannot start a work queue thread: ") + e.what());
  }
  return queue;
}

WorkQueue::~WorkQueue() { Shutdown(ShutdownMode::kRunQueued); }

bool WorkQueue::TryPost(Task job) {
  return Enqueue([&job]() -> Task { return std::move(job); });
}

bool WorkQueue::Enqueue(const std::function<Task()>& make_task) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || queue_.size() >= max_queued_) {
      ++rejected_;
      return false;
    }
    queue_.push_back(make_task());
  }
  ready_.notify_one();
  return true;
}

void WorkQueue::StopAccepting(ShutdownMode mode) {
  std::deque<Task> dropped;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    if (mode == ShutdownMode::kDropQueued) {
      dropped.swap(queue_);
    }
  }
  ready_.notify_all();
  // Destroyed outside the lock: a job's captures may post to a loop.
  dropped.clear();
}

void WorkQueue::Shutdown(ShutdownMode mode) {
  StopAccepting(mode);
  for (auto& worker : workers_) {
    if (worker.joinable()) {
      worker.join();
    }
  }
}

size_t WorkQueue::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

uint64_t WorkQueue::rejected() const {
  std::lock_guard lock(mutex_);
  return rejected_;
}

void WorkQueue::WorkerMain() noexcept {
  while (true) {
    Task task;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) {
        return;  // stopping, and nothing left to run
      }
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    try {
      task();
    } catch (const std::exception& e) {
      TK_LOG_ERROR("work queue job threw: {}", e.what());
    } catch (...) {
      TK_LOG_ERROR("work queue job threw a non-standard exception");
    }
  }
}

void WorkQueue::PostToLoop(EventLoop& loop, Task task) {
  auto shared = std::make_shared<Task>(std::move(task));
  loop.Post([shared] { (*shared)(); });
}

}  // namespace turnkey::net
