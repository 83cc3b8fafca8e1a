// dyt/ops/rescue.hpp: constants for rows whose sums overflow the compute type.
//
// LayerNorm's and RMSNorm's statistics sum x or x^2 over a row. In float that
// overflows once |x| passes about 1.8e19 / sqrt(cols) (4096 columns of 1e18
// already do), and a sum of opposite bf16 values near its largest overflows
// too; rstd then comes out 0 or NaN, and y = beta or NaN: a silently wrong
// answer for finite inputs. The layers' math (layer_norm.hpp, rms_norm.hpp,
// with Wide = true) detects that case after the fact, rstd not > 0, and
// takes the row's statistics again on x * wide_scale: a power of two, so the
// scaling is exact. Rows that never overflow run exactly the code they always
// did. docs/numerics.md has the resulting limits.
#pragma once

#include "../config.hpp"

namespace dyt {
namespace ops {

// 2^-(max_exponent / 2 + 24): 2^-88 in float, 2^-536 in double. Scaled by it,
// a finite value is at most 2^40 (float; 2^488 in double), so a deviation
// from the mean is below 2^41, its square below 2^82, and a sum of up to 2^45
// of them finite. Values below 2^-38 (2^-486) lose bits to subnormals when
// scaled, but a row only takes this path when its spread is above 2^64
// (2^512) / sqrt(cols), next to which they are negligible.
template <class C>
DYT_HOST_DEVICE constexpr C wide_scale() {
  if constexpr (sizeof(C) == 8) return C(0x1p-536);
  else return C(0x1p-88f);
}

// The unit roundoff of C: 2^-24 in float, 2^-53 in double.
template <class C>
DYT_HOST_DEVICE constexpr C unit_roundoff() {
  if constexpr (sizeof(C) == 8) return C(0x1p-53);
  else return C(0x1p-24f);
}

// The largest finite value of C (float or double), without <limits> (device code).
template <class C>
DYT_HOST_DEVICE constexpr C largest() {
  if constexpr (sizeof(C) == 8) return C(0x1.fffffffffffffp1023);
  else return C(0x1.fffffep127f);
}

}  // namespace ops
}  // namespace dyt
