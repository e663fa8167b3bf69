#include "core/thread_pool.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <exception>
#include <mutex>

namespace darkroom {

ThreadPool::ThreadPool(int threads) : threads_(std::max(1, threads)) {}

ThreadPool& ThreadPool::global() {
  static ThreadPool pool([] {
    if (const char* env = std::getenv("DARKROOM_THREADS")) {
      int n = std::atoi(env);
      if (n > 0) return n;
    }
    return omp_get_max_threads();
  }());
  return pool;
}

bool ThreadPool::in_parallel() {
  return omp_in_parallel() != 0;
}

void ThreadPool::run_on_all(const std::function<void(int, int)>& fn) {
  if (threads_ == 1 || omp_in_parallel()) {
    fn(0, 1);
    return;
  }
  std::exception_ptr error;
  std::mutex error_mu;
#pragma omp parallel num_threads(threads_)
  {
    try {
      fn(omp_get_thread_num(), omp_get_num_threads());
    } catch (...) {
      std::lock_guard lock(error_mu);
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn,
                              int64_t min_chunk) {
  if (n <= 0) return;
  min_chunk = std::max<int64_t>(1, min_chunk);
  const int64_t max_chunks = std::max<int64_t>(1, n / min_chunk);
  if (threads_ == 1 || max_chunks == 1 || omp_in_parallel()) {
    fn(0, n);
    return;
  }
  // A few chunks per thread balances uneven work (and cores taken by other processes)
  // without much scheduling overhead; threads take the next chunk from a shared counter.
  const int64_t want = std::min<int64_t>(max_chunks, int64_t{threads_} * 4);
  const int64_t chunk = (n + want - 1) / want;
  const int64_t chunks = (n + chunk - 1) / chunk;
  const int team = static_cast<int>(std::min<int64_t>(threads_, chunks));
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mu;
#pragma omp parallel num_threads(team)
  {
    for (int64_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < chunks;) {
      const int64_t begin = c * chunk;
      try {
        fn(begin, std::min(n, begin + chunk));
      } catch (...) {
        std::lock_guard lock(error_mu);
        if (!error) error = std::current_exception();
      }
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace darkroom
