// SIMD targets the kernels are compiled for. Include this before any Highway header in a kernel
// file that uses foreach_target.h.
//
// The library is built without -march=native by default, so kernels use Highway's dynamic
// dispatch: each is compiled for AVX2 and AVX-512 (plus a portable fallback) and the best one the
// CPU supports is picked at the first call. SSSE3/SSE4 are skipped: every x86 CPU without AVX2 is
// old enough that the portable fallback is acceptable, and each extra target costs compile time.
#pragma once

#ifndef HWY_DISABLED_TARGETS
#define HWY_DISABLED_TARGETS (HWY_SSSE3 | HWY_SSE4)
#endif
