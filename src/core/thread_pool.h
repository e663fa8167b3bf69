// The worker threads for our own CPU kernels: OpenMP's, the same team that oneDNN's dense
// primitives run on (Debian's oneDNN is built on libgomp). One set of threads for both
// means that a kernel of ours starting right after a convolution finds the threads still
// spinning, instead of waking a second pool's threads while OpenMP's spin on the same
// cores (a profile of a UNet step on 2 cores showed 19% of the time in such hand-offs).
// The calling thread takes part in the work, and a parallel_for issued from inside a
// parallel region runs inline, so nesting cannot deadlock or oversubscribe.
//
//   ThreadPool::global().parallel_for(rows, [&](int64_t begin, int64_t end) { ... });
#pragma once

#include <cstdint>
#include <functional>

namespace darkroom {

class ThreadPool {
 public:
  // `threads` counts the caller: a pool of 1 runs everything inline.
  explicit ThreadPool(int threads);
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return threads_; }

  // Splits [0, n) into contiguous chunks of at least `min_chunk` items and calls
  // fn(begin, end) on each, spread over the pool; returns when all are done. The first
  // exception thrown by fn is rethrown here.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn,
                    int64_t min_chunk = 1);

  // Calls fn(thread, threads) once on each of `size()` threads at once (thread in
  // [0, threads)), for work that keeps per-thread scratch and shares a work counter.
  // Inside another parallel region it runs fn(0, 1) inline.
  void run_on_all(const std::function<void(int, int)>& fn);

  // True on a thread that is running pool work (nested calls then run inline).
  static bool in_parallel();

  // The process-wide pool: DARKROOM_THREADS threads, else OpenMP's default team size
  // (OMP_NUM_THREADS, else one per hardware thread), so that it matches oneDNN's.
  static ThreadPool& global();

 private:
  int threads_;
};

}  // namespace darkroom
