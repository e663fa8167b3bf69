// A fixed pool of worker threads for our own CPU kernels (oneDNN brings its own
// OpenMP threads for dense math). The calling thread takes part in the work, and a
// parallel_for issued from inside a worker runs inline, so nesting cannot deadlock.
//
//   ThreadPool::global().parallel_for(rows, [&](int64_t begin, int64_t end) { ... });
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace darkroom {

class ThreadPool {
 public:
  // `threads` counts the caller: a pool of 1 runs everything inline.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Splits [0, n) into contiguous chunks of at least `min_chunk` items and calls
  // fn(begin, end) on each, spread over the pool; returns when all are done. The first
  // exception thrown by fn is rethrown here.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn,
                    int64_t min_chunk = 1);

  // The process-wide pool: DARKROOM_THREADS threads, else one per hardware thread.
  static ThreadPool& global();

 private:
  void worker_loop();
  void run_chunks();

  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable done_cv_;
  bool stop_ = false;
  uint64_t generation_ = 0;

  // The job in flight (guarded by the generation handshake).
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t n_ = 0;
  int64_t chunk_ = 1;
  int64_t chunks_ = 0;
  std::atomic<int64_t> next_{0};
  std::atomic<int> active_{0};
  std::exception_ptr error_;
  std::mutex job_mu_;  // one parallel_for at a time from outside the pool
};

}  // namespace darkroom
