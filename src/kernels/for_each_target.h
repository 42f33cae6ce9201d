// Test helper: runs a check once for every SIMD target the kernels were compiled for and this CPU
// supports, so the AVX2 and portable paths (HWY_SCALAR: GCC 12 builds no EMU128) are tested on an
// AVX-512 machine too.
#pragma once

#include <cstdint>

#include <gtest/gtest.h>

#include "kernels/hwy_targets.h"
#include <hwy/targets.h>

namespace qaq::internal {

template <typename F>
void ForEachSimdTarget(F&& check) {
  for (std::int64_t target :
       {std::int64_t(HWY_AVX3), std::int64_t(HWY_AVX2), std::int64_t(HWY_SCALAR)}) {
    if ((hwy::SupportedTargets() & target) == 0) continue;
    hwy::SetSupportedTargetsForTest(target);
    SCOPED_TRACE(hwy::TargetName(target));
    check();
  }
  hwy::SetSupportedTargetsForTest(0);
}

}  // namespace qaq::internal
