// dyt/cpu/convert.hpp: vector load/store between storage types and compute batches.
//
// simd::load<T>(p) reads exactly simd::width<compute_t<T>> elements of T from p
// (any alignment) into a batch of compute_t<T>; simd::store<T>(p, v) writes exactly
// that many back, rounding once to nearest even. Both agree bit for bit with
// scalar_traits<T>::load/store lane by lane, NaN payloads included, so a row
// kernel may mix its vector body and its scalar tail freely.
//
// The 16-bit paths are picked by overload on the xsimd architecture tag of the
// batch (most derived wins, as in xsimd's own kernels), each behind the feature
// macros its intrinsics need; the portable_arch overloads (xsimd::generic, or
// xsimd::common since 14.0) are the fallback for every other target.
//
//   bf16 widen   AVX-512F vpmovzxwd, AVX2 vpmovzxwd, AVX/SSE2 punpck with zero,
//                NEON vshll; generic: scalar loop.
//   bf16 narrow  integer RNE in xsimd batches (AVX-512F: in mask registers), then
//                AVX-512F vpmovdw, AVX2/AVX/SSE4.1 packusdw, SSE2 packssdw, NEON
//                vshrn/vmovn; generic: scalar loop.
//   half load    AVX-512F / F16C vcvtph2ps, AArch64 fcvtl; generic: integer
//                rebias in xsimd batches.
//   half store   AVX-512F / F16C vcvtps2ph with a round-to-nearest-even immediate
//                (MXCSR's rounding mode is not consulted), AArch64 fcvtn (FPCR's
//                rounding mode, nearest by default); generic: exact integer and
//                float steps in xsimd batches.
//
//   bf16 narrow with AVX512-BF16 (a build whose -march has it): vcvtneps2bf16
//                rounds like the scalar path and treats NaN the same way, but
//                reads subnormal inputs as zero; a vector holding a subnormal
//                (rare: below 1.2e-38) takes the integer path instead, so the
//                results stay bit-exact. One instruction and two mask tests
//                instead of six; measured 24% faster per store on an AMD EPYC.
#pragma once

#include "../config.hpp"

#if DYT_USE_XSIMD

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "../ops/quantize.hpp"
#include "../types.hpp"
#include "simd.hpp"

#if XSIMD_WITH_SSE2
#include <immintrin.h>
#endif
#if XSIMD_WITH_NEON
#include <arm_neon.h>
#endif

namespace dyt {
namespace simd {

template <class T>
using compute_batch = batch<compute_t<T>>;

namespace detail {

template <class A>
using u32_batch = xsimd::batch<std::uint32_t, A>;
template <class A>
using i32_batch = xsimd::batch<std::int32_t, A>;
template <class A>
using f32_batch = xsimd::batch<float, A>;

// ---------------------------------------------------------------------------
// widen_u16<High, A>(p, A{}): the batch-width of uint16 at p, zero-extended to
// 32-bit lanes; with High, shifted into the top half instead (a bf16 becomes
// its float that way). The callers guarantee p points at exactly that many.

template <bool High, class A>
DYT_INLINE u32_batch<A> widen_u16(const void* p, const portable_arch&) {
  constexpr std::size_t n = u32_batch<A>::size;
  std::uint16_t h[n];
  std::uint32_t w[n];
  std::memcpy(h, p, sizeof h);
  for (std::size_t i = 0; i < n; ++i) w[i] = High ? static_cast<std::uint32_t>(h[i]) << 16 : h[i];
  return u32_batch<A>::load_unaligned(w);
}

#if XSIMD_WITH_SSE2
template <bool High, class A>
DYT_INLINE u32_batch<A> widen_u16(const void* p, const xsimd::sse2&) {
  const __m128i h = _mm_loadl_epi64(static_cast<const __m128i*>(p));
  const __m128i z = _mm_setzero_si128();
  // Interleaving with zero both widens and, with the zero first, shifts by 16.
  return High ? _mm_unpacklo_epi16(z, h) : _mm_unpacklo_epi16(h, z);
}
#endif

#if XSIMD_WITH_AVX
// AVX without AVX2 has no 256-bit integer instructions: widen two SSE halves.
template <bool High, class A>
DYT_INLINE u32_batch<A> widen_u16(const void* p, const xsimd::avx&) {
  const __m128i h = _mm_loadu_si128(static_cast<const __m128i*>(p));
  const __m128i z = _mm_setzero_si128();
  const __m128i lo = High ? _mm_unpacklo_epi16(z, h) : _mm_unpacklo_epi16(h, z);
  const __m128i hi = High ? _mm_unpackhi_epi16(z, h) : _mm_unpackhi_epi16(h, z);
  return _mm256_insertf128_si256(_mm256_castsi128_si256(lo), hi, 1);
}
#endif

#if XSIMD_WITH_AVX2
template <bool High, class A>
DYT_INLINE u32_batch<A> widen_u16(const void* p, const xsimd::avx2&) {
  const __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128(static_cast<const __m128i*>(p)));
  return High ? _mm256_slli_epi32(w, 16) : w;
}
#endif

// AVX-512 code in this file uses the zero-masking forms with a full mask where a
// plain form exists: GCC 12.1/12.2 implement the plain forms with an
// _mm512_undefined_*() operand that -Wuninitialized reports once inlined into
// user code (GCC bug 105593, fixed in 12.3), which breaks -Werror builds. The
// masked forms compile to the same instruction.
#if XSIMD_WITH_AVX512F
constexpr __mmask16 all16 = static_cast<__mmask16>(0xffff);

template <bool High, class A>
DYT_INLINE u32_batch<A> widen_u16(const void* p, const xsimd::avx512f&) {
  const __m512i w = _mm512_maskz_cvtepu16_epi32(all16, _mm256_loadu_si256(static_cast<const __m256i*>(p)));
  return High ? _mm512_maskz_slli_epi32(all16, w, 16) : w;
}
#endif

#if XSIMD_WITH_NEON
template <bool High, class A>
DYT_INLINE u32_batch<A> widen_u16(const void* p, const xsimd::neon&) {
  uint16x4_t h;
  std::memcpy(&h, p, sizeof h);  // one 8-byte load, without casting p's type away
  return High ? vshll_n_u16(h, 16) : vmovl_u16(h);
}
#endif

// ---------------------------------------------------------------------------
// narrow_u16<High, A>(p, v, A{}): writes one uint16 per lane of v to p, taken
// from the top half of each lane with High, else from the bottom half (whose
// top half must then be zero: the x86 packs saturate rather than truncate).

template <bool High, class A>
DYT_INLINE void narrow_u16(void* p, const u32_batch<A>& v, const portable_arch&) {
  constexpr std::size_t n = u32_batch<A>::size;
  std::uint32_t w[n];
  std::uint16_t h[n];
  v.store_unaligned(w);
  for (std::size_t i = 0; i < n; ++i) h[i] = static_cast<std::uint16_t>(High ? w[i] >> 16 : w[i]);
  std::memcpy(p, h, sizeof h);
}

#if XSIMD_WITH_SSE2
template <bool High, class A>
DYT_INLINE void narrow_u16(void* p, const u32_batch<A>& v, const xsimd::sse2&) {
  // SSE2 only has the signed saturating pack: sign-extend each 16-bit value to
  // 32 bits first, which that pack then keeps exactly.
  const __m128i s = High ? _mm_srai_epi32(v, 16) : _mm_srai_epi32(_mm_slli_epi32(v, 16), 16);
  _mm_storel_epi64(static_cast<__m128i*>(p), _mm_packs_epi32(s, s));
}
#endif

#if XSIMD_WITH_SSE4_1
template <bool High, class A>
DYT_INLINE void narrow_u16(void* p, const u32_batch<A>& v, const xsimd::sse4_1&) {
  const __m128i s = High ? _mm_srli_epi32(v, 16) : __m128i(v);
  _mm_storel_epi64(static_cast<__m128i*>(p), _mm_packus_epi32(s, s));
}
#endif

#if XSIMD_WITH_AVX
template <bool High, class A>
DYT_INLINE void narrow_u16(void* p, const u32_batch<A>& v, const xsimd::avx&) {
  const __m256i w = v;
  __m128i lo = _mm256_castsi256_si128(w);
  __m128i hi = _mm256_extractf128_si256(w, 1);
  if (High) {
    lo = _mm_srli_epi32(lo, 16);
    hi = _mm_srli_epi32(hi, 16);
  }
  _mm_storeu_si128(static_cast<__m128i*>(p), _mm_packus_epi32(lo, hi));
}
#endif

#if XSIMD_WITH_AVX2
template <bool High, class A>
DYT_INLINE void narrow_u16(void* p, const u32_batch<A>& v, const xsimd::avx2&) {
  // The 256-bit packs work within 128-bit halves; packing the two halves with
  // the 128-bit form keeps the lanes in order without a cross-lane permute.
  const __m256i w = High ? _mm256_srli_epi32(v, 16) : __m256i(v);
  const __m128i packed = _mm_packus_epi32(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
  _mm_storeu_si128(static_cast<__m128i*>(p), packed);
}
#endif

#if XSIMD_WITH_AVX512F
template <bool High, class A>
DYT_INLINE void narrow_u16(void* p, const u32_batch<A>& v, const xsimd::avx512f&) {
  const __m512i w = High ? _mm512_maskz_srli_epi32(all16, v, 16) : __m512i(v);
  _mm512_mask_cvtepi32_storeu_epi16(p, all16, w);
}
#endif

#if XSIMD_WITH_NEON
template <bool High, class A>
DYT_INLINE void narrow_u16(void* p, const u32_batch<A>& v, const xsimd::neon&) {
  const uint16x4_t h = High ? vshrn_n_u32(v, 16) : vmovn_u32(v);
  std::memcpy(p, &h, sizeof h);
}
#endif

// ---------------------------------------------------------------------------
// bfloat16

template <class A>
DYT_INLINE f32_batch<A> load_bf16(const void* p, const portable_arch&) {
  return simd::bit_cast<float>(widen_u16<true, A>(p, A{}));
}

// The same rounding as detail::float_to_bf16_bits in types.hpp, lane by lane.
// NaN is found with a float compare (one instruction, and immune to
// denormals-are-zero since a NaN is never a denormal) and chosen with a float
// select, which moves bits without interpreting them. xsimd::isnan, not v != v:
// xsimd 8.1 compiles != to an ordered compare on AVX and AVX-512 (false for NaN)
// but to an unordered one on SSE2.
template <class A>
DYT_INLINE void store_bf16(void* p, const f32_batch<A>& v, const portable_arch&) {
  using U = u32_batch<A>;
  const U u = simd::bit_cast<std::uint32_t>(v);
  const U rounded = u + U(0x7fffu) + ((u >> 16) & U(1u));
  const U quiet_nan = u | U(0x00400000u);
  const f32_batch<A> r =
      xsimd::select(xsimd::isnan(v), simd::bit_cast<float>(quiet_nan), simd::bit_cast<float>(rounded));
  narrow_u16<true, A>(p, simd::bit_cast<std::uint32_t>(r), A{});
}

#if XSIMD_WITH_AVX512F
// The same steps with mask registers: the odd-lsb test and the NaN compare
// become masks that merge the +1 and the quiet bit in, instead of a shift, an
// and and a blend.
template <class A>
DYT_INLINE void store_bf16(void* p, const f32_batch<A>& v, const xsimd::avx512f&) {
  const __m512i u = _mm512_castps_si512(v);
#if defined(__AVX512BF16__)
  const __mmask16 subnormal = _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7f800000)) &
                              _mm512_test_epi32_mask(u, _mm512_set1_epi32(0x007fffff));
  if (DYT_LIKELY(subnormal == 0)) {
    _mm256_storeu_si256(static_cast<__m256i*>(p), reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(v)));
    return;
  }
#endif
  const __m512i base = _mm512_add_epi32(u, _mm512_set1_epi32(0x7fff));
  const __mmask16 odd = _mm512_test_epi32_mask(u, _mm512_set1_epi32(0x10000));
  __m512i r = _mm512_mask_add_epi32(base, odd, base, _mm512_set1_epi32(1));
  const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  r = _mm512_mask_or_epi32(r, nan, u, _mm512_set1_epi32(0x00400000));
  narrow_u16<true, A>(p, r, A{});
}
#endif

#if XSIMD_WITH_NEON
// xsimd 8.1 does its NEON bitwise_cast through a table of function pointers
// that GCC leaves as out-of-line calls with the batch spilled to the stack;
// NEON's own reinterprets are free.
template <class A>
DYT_INLINE f32_batch<A> load_bf16(const void* p, const xsimd::neon&) {
  return vreinterpretq_f32_u32(widen_u16<true, A>(p, A{}));
}

template <class A>
DYT_INLINE void store_bf16(void* p, const f32_batch<A>& v, const xsimd::neon&) {
  const uint32x4_t u = vreinterpretq_u32_f32(v);
  const uint32x4_t lsb = vandq_u32(vshrq_n_u32(u, 16), vdupq_n_u32(1));
  const uint32x4_t rounded = vaddq_u32(vaddq_u32(u, vdupq_n_u32(0x7fff)), lsb);
  const uint32x4_t nan = vmvnq_u32(vceqq_f32(v, v));
  const uint32x4_t r = vbslq_u32(nan, vorrq_u32(u, vdupq_n_u32(0x00400000)), rounded);
  narrow_u16<true, A>(p, r, A{});
}
#endif

// ---------------------------------------------------------------------------
// half, portable: the algorithms of detail::half_bits_to_float and
// detail::float_to_half_bits in types.hpp, written on batches.

template <class A>
DYT_INLINE f32_batch<A> load_half(const void* p, const portable_arch&) {
  using U = u32_batch<A>;
  const U h = widen_u16<false, A>(p, A{});
  const U sign = (h & U(0x8000u)) << 16;
  const U em = (h & U(0x7fffu)) << 13;
  const U exp = em & U(0x0f800000u);
  U o = em + U(0x38000000u);
  const U quiet = (((em & U(0x007fe000u)) + U(0x007fffffu)) >> 1) & U(0x00400000u);
  o = xsimd::select(exp == U(0x0f800000u), (o + U(0x38000000u)) | quiet, o);
  const U sub = simd::bit_cast<std::uint32_t>(simd::bit_cast<float>(o + U(0x00800000u)) -
                                              f32_batch<A>(6.103515625e-05f)) &
                U(0x7fffffffu);
  o = xsimd::select(exp == U(0u), sub, o);
  return simd::bit_cast<float>(o | sign);
}

// Subnormal results need a per-lane variable shift in the scalar code, which
// SSE2 lacks. Instead: y = |v| * 2^24 is exact, its truncation q and the
// fraction y - q are exact too, and rounding q to even from the fraction gives
// the same result as the shift, independent of MXCSR's rounding mode and of
// flush-to-zero (y is never subnormal; a subnormal |v| read as zero under
// denormals-are-zero rounds to zero either way).
template <class A>
DYT_INLINE void store_half(void* p, const f32_batch<A>& v, const portable_arch&) {
  using U = u32_batch<A>;
  using I = i32_batch<A>;
  using F = f32_batch<A>;
  const U u = simd::bit_cast<std::uint32_t>(v);
  const U sign = (u >> 16) & U(0x8000u);
  const U a = u & U(0x7fffffffu);
  const F av = simd::bit_cast<float>(a);

  const U normal = (a - U(0x38000000u) + U(0x0fffu) + ((a >> 13) & U(1u))) >> 13;

  const auto is_sub = av < F(6.103515625e-05f);  // 2^-14, the smallest normal half
  // Zeroing the other lanes keeps the float->int conversion in range (out of
  // range it is undefined in the emulated xsimd targets).
  const F y = xsimd::select(is_sub, av * F(16777216.0f), F(0.0f));
  const I q = xsimd::to_int(y);
  const F qf = xsimd::to_float(q);
  const F frac = y - qf;
  const F odd = xsimd::to_float(q & I(1));
  const auto up = (frac > F(0.5f)) | ((frac == F(0.5f)) & (odd == F(1.0f)));
  const F sub = simd::bit_cast<float>(xsimd::to_int(xsimd::select(up, qf + F(1.0f), qf)));

  F r = xsimd::select(is_sub, sub, simd::bit_cast<float>(normal));
  r = xsimd::select(av >= F(65520.0f), simd::bit_cast<float>(U(0x7c00u)), r);
  r = xsimd::select(xsimd::isnan(v), simd::bit_cast<float>(U(0x7e00u) | ((a >> 13) & U(0x03ffu))), r);
  narrow_u16<false, A>(p, simd::bit_cast<std::uint32_t>(r) | sign, A{});
}

// half, hardware. vcvtph2ps quiets a signalling NaN and vcvtps2ph keeps the top
// payload bits and quiets, which is what the scalar code was written to match.
#define DYT_CVT_NEAREST (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

#if XSIMD_WITH_SSE2 && defined(__F16C__)
template <class A>
DYT_INLINE f32_batch<A> load_half(const void* p, const xsimd::sse2&) {
  return _mm_cvtph_ps(_mm_loadl_epi64(static_cast<const __m128i*>(p)));
}
template <class A>
DYT_INLINE void store_half(void* p, const f32_batch<A>& v, const xsimd::sse2&) {
  _mm_storel_epi64(static_cast<__m128i*>(p), _mm_cvtps_ph(v, DYT_CVT_NEAREST));
}
#endif

#if XSIMD_WITH_AVX && defined(__F16C__)
template <class A>
DYT_INLINE f32_batch<A> load_half(const void* p, const xsimd::avx&) {
  return _mm256_cvtph_ps(_mm_loadu_si128(static_cast<const __m128i*>(p)));
}
template <class A>
DYT_INLINE void store_half(void* p, const f32_batch<A>& v, const xsimd::avx&) {
  _mm_storeu_si128(static_cast<__m128i*>(p), _mm256_cvtps_ph(v, DYT_CVT_NEAREST));
}
#endif

#if XSIMD_WITH_AVX512F
template <class A>
DYT_INLINE f32_batch<A> load_half(const void* p, const xsimd::avx512f&) {
  return _mm512_maskz_cvtph_ps(all16, _mm256_loadu_si256(static_cast<const __m256i*>(p)));
}
template <class A>
DYT_INLINE void store_half(void* p, const f32_batch<A>& v, const xsimd::avx512f&) {
  _mm256_storeu_si256(static_cast<__m256i*>(p), _mm512_maskz_cvtps_ph(all16, v, DYT_CVT_NEAREST));
}
#endif

#undef DYT_CVT_NEAREST

// 32-bit Arm NEON has the same conversions only with the optional fp16
// extension; it takes the generic path.
#if XSIMD_WITH_NEON && defined(__aarch64__)
template <class A>
DYT_INLINE f32_batch<A> load_half(const void* p, const xsimd::neon&) {
  float16x4_t h;
  std::memcpy(&h, p, sizeof h);
  return vcvt_f32_f16(h);
}
template <class A>
DYT_INLINE void store_half(void* p, const f32_batch<A>& v, const xsimd::neon&) {
  const float16x4_t h = vcvt_f16_f32(v);
  std::memcpy(p, &h, sizeof h);
}
#endif

// float and double: a type other than float/double with their layout (say
// std::float32_t) is copied through a local array instead of being read through
// a pointer of another type.
template <class C, class T>
DYT_INLINE batch<C> load_wide(const T* p) {
  if constexpr (std::is_same<T, C>::value) {
    return batch<C>::load_unaligned(p);
  } else {
    C tmp[batch<C>::size];
    std::memcpy(tmp, p, sizeof tmp);
    return batch<C>::load_unaligned(tmp);
  }
}

template <class C, class T>
DYT_INLINE void store_wide(T* p, const batch<C>& v) {
  if constexpr (std::is_same<T, C>::value) {
    v.store_unaligned(p);
  } else {
    C tmp[batch<C>::size];
    v.store_unaligned(tmp);
    std::memcpy(p, tmp, sizeof tmp);
  }
}

}  // namespace detail

template <class T>
DYT_INLINE compute_batch<T> load(const T* p) {
  using A = typename compute_batch<T>::arch_type;
  constexpr format f = format_of<T>::value;
  if constexpr (f == format::bf16) {
    return detail::load_bf16<A>(p, A{});
  } else if constexpr (f == format::f16) {
    return detail::load_half<A>(p, A{});
  } else {
    return detail::load_wide<compute_t<T>>(p);
  }
}

template <class T>
DYT_INLINE void store(T* p, const compute_batch<T>& v) {
  using A = typename compute_batch<T>::arch_type;
  constexpr format f = format_of<T>::value;
  if constexpr (f == format::bf16) {
    detail::store_bf16<A>(p, v, A{});
  } else if constexpr (f == format::f16) {
    detail::store_half<A>(p, v, A{});
  } else {
    detail::store_wide<compute_t<T>>(p, v);
  }
}

// ---------------------------------------------------------------------------
// 8-bit codes of the quantized forward (ops/quantize.hpp), from float lanes:
// the scalar encoders' steps on batches, exact and independent of the
// rounding mode, so the vector body agrees with the scalar tail bit for bit.
// The 32-bit results are narrowed to bytes through a small buffer (a loop of
// fixed count the compiler turns into packs).

namespace detail {

// round_even(q, A{}): q rounded to the nearest integer, ties to even, as an
// integer-valued float, for |q| <= 2^23 (NaN and larger lanes are discarded
// by the callers). Portable: from the truncation and the exact remainder.
template <class A>
DYT_INLINE f32_batch<A> round_even(const f32_batch<A>& q, const portable_arch&) {
  using F = f32_batch<A>;
  const i32_batch<A> t = xsimd::to_int(q);  // truncation
  const F tf = xsimd::to_float(t);
  const F rest = q - tf;
  const F odd = xsimd::to_float(t & i32_batch<A>(1));  // 1 for odd t of either sign, else 0
  const F up = xsimd::select((rest > F(0.5f)) | ((rest == F(0.5f)) & (odd > F(0.f))), F(1.f), F(0.f));
  const F down = xsimd::select((rest < F(-0.5f)) | ((rest == F(-0.5f)) & (odd > F(0.f))), F(1.f), F(0.f));
  return tf + up - down;
}

// SSE4.1 / AVX / AVX-512: the rounding instruction with the mode in its
// immediate, so MXCSR's rounding mode is not consulted (as the scalar
// encoder, which uses none). AVX-512: the zero-masking form (see all16).
#if XSIMD_WITH_SSE4_1
template <class A>
DYT_INLINE f32_batch<A> round_even(const f32_batch<A>& q, const xsimd::sse4_1&) {
  return _mm_round_ps(q, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
#endif
#if XSIMD_WITH_AVX
template <class A>
DYT_INLINE f32_batch<A> round_even(const f32_batch<A>& q, const xsimd::avx&) {
  return _mm256_round_ps(q, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
#endif
#if XSIMD_WITH_AVX512F
template <class A>
DYT_INLINE f32_batch<A> round_even(const f32_batch<A>& q, const xsimd::avx512f&) {
  return _mm512_maskz_roundscale_ps(all16, q, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
}
#endif

// store_bytes(p, codes, A{}): the low byte of each 32-bit lane (every lane
// holds a value in [-128, 255]) to p, one byte per lane.
template <class A>
DYT_INLINE void store_bytes(void* p, const i32_batch<A>& codes, const portable_arch&) {
  constexpr std::size_t n = i32_batch<A>::size;
  alignas(64) std::int32_t wide[n];
  codes.store_aligned(wide);
  unsigned char narrow[n];
  for (std::size_t i = 0; i < n; ++i) narrow[i] = static_cast<unsigned char>(wide[i]);
  std::memcpy(p, narrow, n);
}

#if XSIMD_WITH_AVX2
// Two packs with saturation keep the values (int8 codes in [-127, 127] go
// through the signed packs; the E4M3 codes' upper half would saturate in a
// signed byte pack, so the low byte is first masked into [0, 255] and the
// unsigned pack used for both: int8's negative codes are masked to their
// two's-complement byte). Each 128-bit half then holds its 4 bytes first.
template <class A>
DYT_INLINE void store_bytes(void* p, const i32_batch<A>& codes, const xsimd::avx2&) {
  const __m256i low = _mm256_and_si256(codes, _mm256_set1_epi32(0xff));
  const __m256i words = _mm256_packus_epi32(low, low);
  const __m256i bytes = _mm256_packus_epi16(words, words);
  const std::uint32_t lo = std::uint32_t(_mm_cvtsi128_si32(_mm256_castsi256_si128(bytes)));
  const std::uint32_t hi = std::uint32_t(_mm_cvtsi128_si32(_mm256_extracti128_si256(bytes, 1)));
  const std::uint64_t both = std::uint64_t(lo) | (std::uint64_t(hi) << 32);
  std::memcpy(p, &both, 8);
}
#endif

#if XSIMD_WITH_AVX512F
// vpmovdb truncates each lane to its low byte.
template <class A>
DYT_INLINE void store_bytes(void* p, const i32_batch<A>& codes, const xsimd::avx512f&) {
  _mm_storeu_si128(static_cast<__m128i*>(p), _mm512_maskz_cvtepi32_epi8(all16, codes));
}
#endif

}  // namespace detail

// int8: NaN -> 0, clamp to [-127, 127], round to nearest even.
template <class A>
DYT_INLINE void store_int8_codes(std::int8_t* p, const xsimd::batch<float, A>& v) {
  using F = xsimd::batch<float, A>;
  const F finite = xsimd::select(xsimd::isnan(v), F(0.f), v);
  const F clamped = lanes<F>::clamp(finite, -127.f, 127.f);
  detail::store_bytes<A>(p, xsimd::to_int(detail::round_even<A>(clamped, A{})), A{});
}

// E4M3, as detail::float_to_e4m3_bits: the normal arm on the bits; the
// subnormal one as round_even(|v| * 2^9), exact for |v| < 2^-6 (a float
// subnormal |v| read as zero under denormals-are-zero rounds to code 0
// either way); then saturation and NaN. Signed 32-bit lanes throughout: the
// magnitudes are below 2^31, and the arms' results in lanes they do not
// select are discarded.
template <class A>
DYT_INLINE void store_e4m3_codes(float8_e4m3* p, const xsimd::batch<float, A>& v) {
  using F = xsimd::batch<float, A>;
  using I = detail::i32_batch<A>;
  const I u = bit_cast<std::int32_t>(v);
  const I a = u & I(0x7fffffff);
  const I sign = (u >> 24) & I(0x80);
  const I normal = (a - I(0x3c000000) + I(0x7ffff) + ((a >> 20) & I(1))) >> 20;
  const I sub = xsimd::to_int(detail::round_even<A>(bit_cast<float>(a) * F(512.f), A{}));
  I r = xsimd::select(a < I(0x3c800000), sub, normal);
  r = xsimd::select(a >= I(0x43e00000), I(0x7e), r);
  r = xsimd::select(a > I(0x7f800000), I(0x7f), r);
  detail::store_bytes<A>(p, r | sign, A{});
}

}  // namespace simd

namespace ops {
template <class A>
struct vector_codes<std::int8_t, xsimd::batch<float, A>> {
  static constexpr bool available = true;
  DYT_INLINE static void store(std::int8_t* p, const xsimd::batch<float, A>& v) { simd::store_int8_codes(p, v); }
};
template <class A>
struct vector_codes<float8_e4m3, xsimd::batch<float, A>> {
  static constexpr bool available = true;
  DYT_INLINE static void store(float8_e4m3* p, const xsimd::batch<float, A>& v) { simd::store_e4m3_codes(p, v); }
};
}  // namespace ops
}  // namespace dyt

#endif  // DYT_USE_XSIMD
