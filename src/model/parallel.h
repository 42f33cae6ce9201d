// The engine's threading: OpenMP regions whose work is split in contiguous shares, so each output
// is produced by exactly one thread in the same order whatever the thread count. With one thread
// no OpenMP region is entered at all (no fork/join cost on the single-thread decode path).
#pragma once

#include <cstdint>
#include <utility>

#include <omp.h>

namespace qaq::internal {

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
