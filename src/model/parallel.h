// The engine's threading: OpenMP regions whose work is split in contiguous shares, so each output
// is produced by exactly one thread in the same order whatever the thread count. With one thread
// no OpenMP region is entered at all (no fork/join cost on the single-thread decode path).
#pragma once

#include <cstdint>
#include <utility>

#include <omp.h>

namespace qaq::internal {

// Below this many multiply-adds a parallel region costs more than it saves (fork/join is a few
// microseconds, and far more when the cores are shared); such work runs on the calling thread.
// Which thread computes an output never changes a result, so this affects speed only.
inline constexpr std::int64_t kMinParallelWork = std::int64_t{1} << 16;

inline int ThreadsFor(std::int64_t work, int n_threads, std::int64_t min_work = kMinParallelWork) {
  return work >= min_work ? n_threads : 1;
}

// Calls body(thread, n_threads_running) once on each of up to n_threads threads.
template <typename Body>
void RunOnThreads(int n_threads, Body&& body) {
  if (n_threads <= 1) {
    body(0, 1);
    return;
  }
#pragma omp parallel num_threads(n_threads)
  body(omp_get_thread_num(), omp_get_num_threads());
}

// Thread `thread` of `n_threads` takes items [first, second) of n.
inline std::pair<std::int64_t, std::int64_t> ShareOf(std::int64_t n, int thread, int n_threads) {
  return {n * thread / n_threads, n * (thread + 1) / n_threads};
}

}  // namespace qaq::internal
