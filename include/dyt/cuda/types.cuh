// dyt/cuda/types.cuh: CUDA's 16-bit types, float vectors of lanes and 16-byte
// loads and stores for the device engines (nvcc only).
//
// __nv_bfloat16 and __half have the bits of dyt::bfloat16 and dyt::half, so a
// format_of specialization is all they need: every layer accepts either
// spelling, and the launchers reinterpret both as one storage type so each
// format compiles its kernels once.
#pragma once

#if !defined(__CUDACC__)
#error "dyt/cuda/*.cuh needs nvcc (CUDA); CPU code includes dyt/dyt.hpp only"
#endif

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../ops/lanes.hpp"
#include "../ops/quantize.hpp"
#include "../types.hpp"

namespace dyt {

template <>
struct format_of<__nv_bfloat16> : std::integral_constant<format, format::bf16> {};
template <>
struct format_of<__half> : std::integral_constant<format, format::f16> {};

namespace cuda_detail {

// The one storage type the kernels are compiled for, per format.
template <class T>
using storage_t = std::conditional_t<format_of<T>::value == format::bf16, bfloat16,
                                     std::conditional_t<format_of<T>::value == format::f16, half, float>>;

template <class T>
DYT_HOST_DEVICE DYT_INLINE storage_t<T>* as_storage(T* p) {
  return reinterpret_cast<storage_t<T>*>(p);
}
template <class T>
DYT_HOST_DEVICE DYT_INLINE const storage_t<T>* as_storage(const T* p) {
  return reinterpret_cast<const storage_t<T>*>(p);
}

// N float lanes held by one thread: the "lanes" type of ops/ on the device,
// N columns loaded by one 16-byte access (4 floats or 8 16-bit values).
template <int N>
struct fvec {
  float v[N];

  __device__ DYT_INLINE static fvec splat(float c) {
    fvec r;
    _Pragma("unroll") for (int i = 0; i < N; ++i) r.v[i] = c;
    return r;
  }
  // Lanes summed left to right: a fixed order, so every run rounds alike.
  __device__ DYT_INLINE float sum() const {
    float s = v[0];
    _Pragma("unroll") for (int i = 1; i < N; ++i) s += v[i];
    return s;
  }
};

#define DYT_FVEC_BINARY(op)                                                              \
  template <int N>                                                                       \
  __device__ DYT_INLINE fvec<N> operator op(const fvec<N>& a, const fvec<N>& b) {        \
    fvec<N> r;                                                                           \
    _Pragma("unroll") for (int i = 0; i < N; ++i) r.v[i] = a.v[i] op b.v[i];                    \
    return r;                                                                            \
  }                                                                                      \
  template <int N>                                                                       \
  __device__ DYT_INLINE fvec<N> operator op(const fvec<N>& a, float b) {                 \
    fvec<N> r;                                                                           \
    _Pragma("unroll") for (int i = 0; i < N; ++i) r.v[i] = a.v[i] op b;                         \
    return r;                                                                            \
  }                                                                                      \
  template <int N>                                                                       \
  __device__ DYT_INLINE fvec<N> operator op(float a, const fvec<N>& b) {                 \
    fvec<N> r;                                                                           \
    _Pragma("unroll") for (int i = 0; i < N; ++i) r.v[i] = a op b.v[i];                         \
    return r;                                                                            \
  }                                                                                      \
  template <int N>                                                                       \
  __device__ DYT_INLINE fvec<N>& operator op##=(fvec<N>& a, const fvec<N>& b) {          \
    _Pragma("unroll") for (int i = 0; i < N; ++i) a.v[i] op## = b.v[i];                         \
    return a;                                                                            \
  }
DYT_FVEC_BINARY(+)
DYT_FVEC_BINARY(-)
DYT_FVEC_BINARY(*)
#undef DYT_FVEC_BINARY

// Applies a float -> float function to every lane.
template <int N, class F>
__device__ DYT_INLINE fvec<N> map(const fvec<N>& a, F f) {
  fvec<N> r;
  _Pragma("unroll") for (int i = 0; i < N; ++i) r.v[i] = f(a.v[i]);
  return r;
}

// ---- 16-byte raw vectors ------------------------------------------------------
// raw<S, N>: N values of storage type S as they sit in memory (16 bytes).
template <class S, int N>
struct alignas(16) raw {
  uint4 bits;
};

template <class S, int N>
__device__ DYT_INLINE raw<S, N> load_raw(const S* p) {
  static_assert(sizeof(S) * N == 16, "one 16-byte access");
  return raw<S, N>{*reinterpret_cast<const uint4*>(p)};
}

template <class S, int N>
__device__ DYT_INLINE void store_raw(S* p, const raw<S, N>& r) {
  *reinterpret_cast<uint4*>(p) = r.bits;
}

// Widening: bf16 is the top half of a float (exact); half through the hardware
// conversion (exact too). float is a bit copy.
template <class S, int N>
__device__ DYT_INLINE fvec<N> widen(const raw<S, N>& r) {
  fvec<N> out;
  const std::uint32_t w[4] = {r.bits.x, r.bits.y, r.bits.z, r.bits.w};
  if constexpr (format_of<S>::value == format::f32) {
    _Pragma("unroll") for (int i = 0; i < 4; ++i) out.v[i] = __uint_as_float(w[i]);
  } else if constexpr (format_of<S>::value == format::bf16) {
    _Pragma("unroll") for (int i = 0; i < 4; ++i) {
      out.v[2 * i] = __uint_as_float(w[i] << 16);
      out.v[2 * i + 1] = __uint_as_float(w[i] & 0xffff0000u);
    }
  } else {
    _Pragma("unroll") for (int i = 0; i < 4; ++i) {
      __half2 h;
      std::memcpy(&h, &w[i], 4);
      const float2 f = __half22float2(h);
      out.v[2 * i] = f.x;
      out.v[2 * i + 1] = f.y;
    }
  }
  return out;
}

// Narrowing rounds once, to nearest even (cvt.rn: one instruction per pair).
template <class S, int N>
__device__ DYT_INLINE raw<S, N> narrow(const fvec<N>& v) {
  std::uint32_t w[4];
  if constexpr (format_of<S>::value == format::f32) {
    _Pragma("unroll") for (int i = 0; i < 4; ++i) w[i] = __float_as_uint(v.v[i]);
  } else if constexpr (format_of<S>::value == format::bf16) {
    _Pragma("unroll") for (int i = 0; i < 4; ++i) {
      const __nv_bfloat162 h = __floats2bfloat162_rn(v.v[2 * i], v.v[2 * i + 1]);
      std::memcpy(&w[i], &h, 4);
    }
  } else {
    _Pragma("unroll") for (int i = 0; i < 4; ++i) {
      const __half2 h = __floats2half2_rn(v.v[2 * i], v.v[2 * i + 1]);
      std::memcpy(&w[i], &h, 4);
    }
  }
  return raw<S, N>{make_uint4(w[0], w[1], w[2], w[3])};
}

// One value: the scalar rules of types.hpp, with the hardware conversions for speed.
template <class S>
__device__ DYT_INLINE float load_one(const S* p) {
  if constexpr (format_of<S>::value == format::bf16) {
    const unsigned short b = *reinterpret_cast<const unsigned short*>(p);
    return __uint_as_float(std::uint32_t(b) << 16);
  } else if constexpr (format_of<S>::value == format::f16) {
    return __half2float(__ushort_as_half(*reinterpret_cast<const unsigned short*>(p)));
  } else {
    return *p;
  }
}

template <class S>
__device__ DYT_INLINE void store_one(S* p, float v) {
  // Through the bit patterns: with a memcpy of the __nv_bfloat16 result into
  // the 2-byte S instead, the stored values were seen to lose their low byte
  // (nvcc 13.0, sm_90; not root-caused).
  if constexpr (format_of<S>::value == format::bf16) {
    *reinterpret_cast<unsigned short*>(p) = __bfloat16_as_ushort(__float2bfloat16_rn(v));
  } else if constexpr (format_of<S>::value == format::f16) {
    *reinterpret_cast<unsigned short*>(p) = __half_as_ushort(__float2half_rn(v));
  } else {
    *p = v;
  }
}

}  // namespace cuda_detail

// fvec is a lanes type of ops/ (lanes.hpp): the few functions that are not operators.
template <int N>
struct lanes<cuda_detail::fvec<N>> {
  using V = cuda_detail::fvec<N>;
  using scalar_type = float;
  static constexpr int width = N;
  __device__ DYT_INLINE static V clamp(const V& x, float lo, float hi) {
    return cuda_detail::map(x, [=](float a) { return lanes<float>::clamp(a, lo, hi); });
  }
  __device__ DYT_INLINE static V tanh(const V& x) {
    return cuda_detail::map(x, [](float a) { return ::tanhf(a); });
  }
  __device__ DYT_INLINE static V div(const V& a, const V& b) {
    V r;
    _Pragma("unroll") for (int i = 0; i < N; ++i) r.v[i] = a.v[i] / b.v[i];
    return r;
  }
  __device__ DYT_INLINE static V divide_or_zero(const V& a, const V& b) {
    V r;
    _Pragma("unroll") for (int i = 0; i < N; ++i) r.v[i] = b.v[i] > 0.f ? a.v[i] / b.v[i] : 0.f;
    return r;
  }
  __device__ DYT_INLINE static V sqrt(const V& x) {
    return cuda_detail::map(x, [](float a) { return ::sqrtf(a); });
  }
  // Within 2 ulp (CUDA's rsqrtf: one MUFU instruction), for ops::isru_rsqrt_squash.
  __device__ DYT_INLINE static V rsqrt(const V& x) {
    return cuda_detail::map(x, [](float a) { return ::rsqrtf(a); });
  }
  // Derf's erf and its slope's exp (ops/squash.hpp): CUDA's erff (2 ulp) and expf (2 ulp).
  __device__ DYT_INLINE static V erf(const V& x) {
    return cuda_detail::map(x, [](float a) { return ::erff(a); });
  }
  __device__ DYT_INLINE static V exp(const V& x) {
    return cuda_detail::map(x, [](float a) { return ::expf(a); });
  }
  // __expf (ex2.approx of x log2(e)): within 2 + 1.173 |x| ulp (CUDA C Programming Guide).
  __device__ DYT_INLINE static V exp_fast(const V& x) {
    return cuda_detail::map(x, [](float a) { return ::__expf(a); });
  }
};

namespace cuda_detail {
// Quantized codes by the rules of ops::quant_format<Q>::encode, bit for bit
// (tests/cuda/test_quantize.cu compares them), in few full-rate instructions:
// the conversion instructions (F2I, F2F) issue at a quarter or less of the
// rate of float arithmetic, and the quantized forward is bound by issue.
//  - int8: clamp to [-127, 127], then add 1.5 * 2^23, which rounds to the
//    nearest integer, ties to even, and leaves it in the low bits (two's
//    complement: 0x4b400000 + k), whose low byte is the code; NaN gives 0.
//  - E4M3: sm_89's satfinite cvt, two values an instruction; it saturates
//    to +-448 as the encoder does, and gives every NaN as 0x7f where the
//    encoder keeps the NaN's sign (S.1111.111), put back here. Older devices
//    run the encoder.
// Both return the code in the low byte of a 32-bit word.
__device__ DYT_INLINE std::uint32_t int8_code(float v) {
  const float c = fminf(fmaxf(v, -127.f), 127.f) + 12582912.f;  // 1.5 * 2^23
  return v == v ? (__float_as_uint(c) & 0xffu) : 0u;
}
// Two E4M3 codes (a in the low byte, b in the next).
__device__ DYT_INLINE std::uint32_t e4m3_codes(float a, float b) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 890
  unsigned short pair;
  asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(pair) : "f"(b), "f"(a));
  const std::uint32_t signs = ((__float_as_uint(a) >> 24) & 0x80u) | ((__float_as_uint(b) >> 16) & 0x8000u);
  return pair | signs;
#else
  return detail::float_to_e4m3_bits(a) | (std::uint32_t(detail::float_to_e4m3_bits(b)) << 8);
#endif
}

// Four codes of lanes [i, i + 4) of v in one word, lane i in the low byte.
template <class Q, int N>
__device__ DYT_INLINE std::uint32_t code_word(const fvec<N>& v, int i) {
  if constexpr (std::is_same<Q, std::int8_t>::value) {
    const std::uint32_t lo = __byte_perm(int8_code(v.v[i]), int8_code(v.v[i + 1]), 0x0040);
    const std::uint32_t hi = __byte_perm(int8_code(v.v[i + 2]), int8_code(v.v[i + 3]), 0x0040);
    return __byte_perm(lo, hi, 0x5410);
  } else {
    return e4m3_codes(v.v[i], v.v[i + 1]) | (e4m3_codes(v.v[i + 2], v.v[i + 3]) << 16);
  }
}
}  // namespace cuda_detail

// ops/quantize.hpp's vectorized encoder for a thread's lanes: N codes in one
// 4- or 8-byte store (p aligned to N bytes: the launchers check the codes
// view for the vector paths).
namespace ops {
template <class Q, int N>
struct vector_codes<Q, cuda_detail::fvec<N>, std::enable_if_t<is_quantized_format_v<Q>>> {
  static constexpr bool available = true;
  __device__ DYT_INLINE static void store(Q* p, const cuda_detail::fvec<N>& v) {
    static_assert(N == 4 || N == 8, "one 4- or 8-byte store");
    if constexpr (N == 4) *reinterpret_cast<std::uint32_t*>(p) = cuda_detail::code_word<Q>(v, 0);
    else *reinterpret_cast<uint2*>(p) = make_uint2(cuda_detail::code_word<Q>(v, 0), cuda_detail::code_word<Q>(v, 4));
  }
};
}  // namespace ops

}  // namespace dyt
