// cpu/convert.hpp: the vector load/store of every storage format must agree bit
// for bit with scalar_traits<T>::load/store, NaN payloads included (the quiet-bit
// pattern of a NaN is part of the comparison, not excluded from it), from any
// alignment, touching exactly simd::width<compute_t<T>> elements.
#include <doctest/doctest.h>

// The portable-fallback test below instantiates xsimd's own integer shifts on
// AVX-512 batches; GCC 12.1/12.2 implement those intrinsics with an
// _mm512_undefined_epi32() operand that -W(maybe-)uninitialized then reports
// (GCC bug 105593, fixed in 12.3). Set before any include so that it also
// covers the compiler's intrinsic headers, where the warning is located.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ == 12
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <dyt/config.hpp>

#if DYT_USE_XSIMD

#include <Eigen/Core>

#include <cfenv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <dyt/cpu/convert.hpp>
#include <dyt/types.hpp>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace {

template <class T>
constexpr int W = dyt::simd::width<dyt::compute_t<T>>;

template <class T>
using C = dyt::compute_t<T>;

template <class T>
using uint_of = std::conditional_t<sizeof(T) == 2, std::uint16_t,
                                   std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>>;

template <class T>
uint_of<T> bits(const T& v) {
  uint_of<T> u;
  std::memcpy(&u, &v, sizeof v);
  return u;
}

template <class T>
T from_bits(uint_of<T> u) {
  T v;
  std::memcpy(static_cast<void*>(&v), &u, sizeof v);
  return v;
}

const char* name_of(dyt::format f) {
  switch (f) {
    case dyt::format::f32: return "f32";
    case dyt::format::f64: return "f64";
    case dyt::format::bf16: return "bf16";
    case dyt::format::f16: return "f16";
  }
  return "?";
}

// Loads src[0..n) with simd::load from `src + offset` inside a larger buffer
// (so the pointer takes every alignment modulo the vector width) and compares
// each lane with the scalar load. n must be a multiple of the width.
template <class T>
long check_loads(const std::vector<T>& src, int offset) {
  const std::size_t n = src.size();
  std::vector<T> buf(n + 2 * W<T>);
  std::memcpy(buf.data() + offset, src.data(), n * sizeof(T));
  long bad = 0;
  C<T> lanes[W<T>];
  for (std::size_t i = 0; i < n; i += W<T>) {
    const auto v = dyt::simd::load(buf.data() + offset + i);
    v.store_unaligned(lanes);
    for (int j = 0; j < W<T>; ++j)
      if (bits(lanes[j]) != bits(dyt::scalar_traits<T>::load(src[i + j]))) ++bad;
  }
  return bad;
}

// Stores src[0..n) (compute values) with simd::store to `dst + offset` and
// compares each element with the scalar store.
template <class T>
long check_stores(const std::vector<C<T>>& src, int offset) {
  const std::size_t n = src.size();
  std::vector<T> buf(n + 2 * W<T>);
  long bad = 0;
  for (std::size_t i = 0; i < n; i += W<T>) {
    const auto v = dyt::simd::batch<C<T>>::load_unaligned(src.data() + i);
    dyt::simd::store(buf.data() + offset + i, v);
  }
  for (std::size_t i = 0; i < n; ++i)
    if (bits(buf[offset + i]) != bits(dyt::scalar_traits<T>::store(src[i]))) ++bad;
  return bad;
}

// Float inputs for the stores: random bit patterns (all exponents, NaNs with
// random payloads and both signs), every 16-bit value widened, every tie between
// neighbouring 16-bit values and the floats just around each, all float
// subnormal/zero/Inf corner values. Padded to a multiple of 64 lanes.
std::vector<float> float_samples(std::size_t random_count) {
  std::vector<float> v;
  std::mt19937 rng(2024);
  for (std::size_t i = 0; i < random_count; ++i) v.push_back(from_bits<float>(rng()));
  for (std::uint32_t i = 0; i < 65536; ++i) {
    const float b = dyt::detail::bf16_bits_to_float(static_cast<std::uint16_t>(i));
    const float h = dyt::detail::half_bits_to_float(static_cast<std::uint16_t>(i));
    const float bn = dyt::detail::bf16_bits_to_float(static_cast<std::uint16_t>(i + 1));
    const float hn = dyt::detail::half_bits_to_float(static_cast<std::uint16_t>(i + 1));
    v.push_back(b);
    v.push_back(h);
    if (std::isfinite(b) && std::isfinite(bn) && std::signbit(b) == std::signbit(bn)) {
      const float mid = static_cast<float>((static_cast<double>(b) + bn) / 2.0);
      v.push_back(mid);
      v.push_back(std::nextafter(mid, 0.0f));
      v.push_back(std::nextafter(mid, std::signbit(mid) ? -INFINITY : INFINITY));
    }
    if (std::isfinite(h) && !std::isnan(hn) && std::signbit(h) == std::signbit(hn)) {
      const float mid = static_cast<float>((static_cast<double>(h) + hn) / 2.0);
      v.push_back(mid);
      v.push_back(std::nextafter(mid, 0.0f));
      v.push_back(std::nextafter(mid, std::signbit(mid) ? -INFINITY : INFINITY));
    }
  }
  for (std::uint32_t u : {0x00000000u, 0x80000000u, 0x00000001u, 0x807fffffu, 0x7f800000u, 0xff800000u,
                          0x7f7fffffu, 0x7f7f8000u, 0x477ff000u, 0xc77ff000u, 0x7f800001u, 0xffbfffffu,
                          0x7fc00000u, 0xffc00001u})
    v.push_back(from_bits<float>(u));
  while (v.size() % 64) v.push_back(0.0f);
  return v;
}

template <class T>
void check_format_16(const std::vector<float>& samples) {
  const std::string name = name_of(dyt::scalar_traits<T>::fmt);
  CAPTURE(name);
  CAPTURE(W<T>);
  std::vector<T> all(65536);
  for (std::uint32_t i = 0; i < 65536; ++i) all[i] = from_bits<T>(static_cast<std::uint16_t>(i));
  for (int offset = 0; offset <= W<T>; ++offset) {
    CAPTURE(offset);
    CHECK(check_loads(all, offset) == 0);
  }
  for (int offset : {0, 1, W<T> - 1}) {
    CAPTURE(offset);
    CHECK(check_stores<T>(samples, offset) == 0);
  }
}

}  // namespace

TEST_CASE("convert: 16-bit formats agree with the scalar path bit for bit") {
  const std::vector<float> samples = float_samples(4000000);
  check_format_16<dyt::bfloat16>(samples);
  check_format_16<dyt::half>(samples);
  check_format_16<Eigen::bfloat16>(samples);
  check_format_16<Eigen::half>(samples);
}

// Where the build has AVX512-BF16, bf16 stores use vcvtneps2bf16, which reads
// subnormal floats as zero; a vector holding one must fall back to the exact
// path as a whole. Each lane in turn holds a subnormal among rounding ties
// (ties go to even in both paths), and every lane must match the scalar store.
TEST_CASE("convert: a subnormal in any lane keeps every bf16 lane exact") {
  constexpr int w = W<dyt::bfloat16>;
  const float subnormals[] = {from_bits<float>(0x00000001u), from_bits<float>(0x807fffffu),
                              from_bits<float>(0x00008000u), from_bits<float>(0x00018000u)};
  long bad = 0;
  for (float sub : subnormals) {
    for (int lane = 0; lane < w; ++lane) {
      std::vector<float> v(w);
      for (int j = 0; j < w; ++j) v[j] = from_bits<float>(0x3f808000u + (std::uint32_t(j) << 16));  // ties
      v[lane] = sub;
      bad += check_stores<dyt::bfloat16>(v, 1);
    }
  }
  CHECK(bad == 0);
}

TEST_CASE("convert: every float NaN keeps sign and payload exactly as the scalar path") {
  // all 2 * (2^23 - 1) NaN patterns, through both 16-bit formats
  std::vector<float> nans;
  nans.reserve(1u << 24);
  for (std::uint32_t s = 0; s < 2; ++s)
    for (std::uint32_t m = 1; m < (1u << 23); ++m) nans.push_back(from_bits<float>((s << 31) | 0x7f800000u | m));
  while (nans.size() % 64) nans.push_back(std::numeric_limits<float>::quiet_NaN());
  CHECK(check_stores<dyt::bfloat16>(nans, 1) == 0);
  CHECK(check_stores<dyt::half>(nans, 1) == 0);
}

TEST_CASE("convert: float and double move bits unchanged") {
  std::mt19937_64 rng(99);
  std::vector<float> f(1 << 20);
  std::vector<double> d(1 << 20);
  for (auto& x : f) x = from_bits<float>(static_cast<std::uint32_t>(rng()));
  for (auto& x : d) x = from_bits<double>(rng());
  for (int offset : {0, 1}) {
    CHECK(check_loads(f, offset) == 0);
    CHECK(check_loads(d, offset) == 0);
    CHECK(check_stores<float>(f, offset) == 0);
    CHECK(check_stores<double>(d, offset) == 0);
  }
}

// The portable_arch overloads (xsimd::generic, or xsimd::common since 14.0)
// are what targets without intrinsic paths (SVE, RISC-V, WebAssembly, 32-bit
// Arm for half, ...) run. Here they run on this build's batches, called
// directly, against the scalar path and against the intrinsic overloads.
TEST_CASE("convert: the portable fallbacks agree with the scalar path") {
  namespace d = dyt::simd::detail;
  using A = dyt::simd::batch<float>::arch_type;
  using U = xsimd::batch<std::uint32_t, A>;
  constexpr int w = W<float>;
  const dyt::simd::portable_arch g{};

  std::vector<std::uint16_t> pat(65536);
  for (std::uint32_t i = 0; i < 65536; ++i) pat[i] = static_cast<std::uint16_t>(i);
  long bad = 0;
  float lanes[w];
  for (std::size_t i = 0; i < 65536; i += w) {
    d::load_bf16<A>(pat.data() + i, g).store_unaligned(lanes);
    for (int j = 0; j < w; ++j) bad += bits(lanes[j]) != bits(dyt::detail::bf16_bits_to_float(pat[i + j]));
    d::load_half<A>(pat.data() + i, g).store_unaligned(lanes);
    for (int j = 0; j < w; ++j) bad += bits(lanes[j]) != bits(dyt::detail::half_bits_to_float(pat[i + j]));
    for (bool high : {false, true}) {
      const U a = high ? d::widen_u16<true, A>(pat.data() + i, g) : d::widen_u16<false, A>(pat.data() + i, g);
      const U b = high ? d::widen_u16<true, A>(pat.data() + i, A{}) : d::widen_u16<false, A>(pat.data() + i, A{});
      std::uint16_t na[w], nb[w];
      if (high) {
        d::narrow_u16<true, A>(na, a, g);
        d::narrow_u16<true, A>(nb, b, A{});
      } else {
        d::narrow_u16<false, A>(na, a, g);
        d::narrow_u16<false, A>(nb, b, A{});
      }
      bad += !xsimd::all(a == b);
      for (int j = 0; j < w; ++j) bad += na[j] != pat[i + j] || nb[j] != pat[i + j];
    }
  }
  CHECK(bad == 0);

  std::vector<float> samples = float_samples(1000000);
  for (std::uint32_t s = 0; s < 2; ++s)  // and every NaN payload
    for (std::uint32_t m = 1; m < (1u << 23); m += 97) samples.push_back(from_bits<float>((s << 31) | 0x7f800000u | m));
  while (samples.size() % 64) samples.push_back(0.0f);
  bad = 0;
  std::uint16_t out[w];
  for (std::size_t i = 0; i < samples.size(); i += w) {
    const auto v = dyt::simd::batch<float>::load_unaligned(samples.data() + i);
    d::store_bf16<A>(out, v, g);
    for (int j = 0; j < w; ++j) bad += out[j] != dyt::detail::float_to_bf16_bits(samples[i + j]);
    d::store_half<A>(out, v, g);
    for (int j = 0; j < w; ++j) bad += out[j] != dyt::detail::float_to_half_bits(samples[i + j]);
  }
  CHECK(bad == 0);
}

namespace {
// Reads from a heap block of exactly W elements (AddressSanitizer flags any
// read past it) and writes into the middle of a guarded buffer.
template <class T>
void check_extent() {
  const std::string name = name_of(dyt::scalar_traits<T>::fmt);
  CAPTURE(name);
  constexpr int w = W<T>;
  std::unique_ptr<T[]> exact(new T[w]);
  for (int i = 0; i < w; ++i) exact[i] = dyt::scalar_traits<T>::store(static_cast<C<T>>(i + 1));
  const auto v = dyt::simd::load(exact.get());
  C<T> lanes[w];
  v.store_unaligned(lanes);
  for (int i = 0; i < w; ++i) CHECK(lanes[i] == static_cast<C<T>>(i + 1));
  dyt::simd::store(exact.get(), v * dyt::simd::compute_batch<T>(2));
  for (int i = 0; i < w; ++i) CHECK(dyt::scalar_traits<T>::load(exact[i]) == static_cast<C<T>>(2 * (i + 1)));

  const int guard = 2 * w + 3;
  std::vector<T> buf(static_cast<std::size_t>(w + 2 * guard));
  const T sentinel = from_bits<T>(static_cast<uint_of<T>>(0x5a5a5a5a5a5a5a5aull));
  for (int offset = 0; offset < w; ++offset) {
    for (auto& x : buf) x = sentinel;
    dyt::simd::store(buf.data() + guard + offset, v);
    for (int i = 0; i < static_cast<int>(buf.size()); ++i) {
      const bool inside = i >= guard + offset && i < guard + offset + w;
      if (inside)
        CHECK(dyt::scalar_traits<T>::load(buf[i]) == static_cast<C<T>>(i - guard - offset + 1));
      else
        CHECK(bits(buf[i]) == bits(sentinel));
    }
  }
}
}  // namespace

TEST_CASE("convert: load reads and store writes exactly width elements") {
  check_extent<float>();
  check_extent<double>();
  check_extent<dyt::bfloat16>();
  check_extent<dyt::half>();
  check_extent<Eigen::half>();
}

#if defined(__SSE2__)
// The scalar code is integer-only and the x86 vector paths use either integer
// steps, exact float steps or an explicit rounding immediate, so neither the
// MXCSR rounding mode nor flush-to-zero / denormals-are-zero may change a
// result. (AArch64's fcvtn does follow FPCR's rounding mode, so this is x86 only.)
TEST_CASE("convert: results do not depend on MXCSR rounding or FTZ/DAZ") {
  const std::vector<float> samples = float_samples(200000);
  const std::size_t n = samples.size();
  // expected results, computed in the default environment
  std::vector<std::uint16_t> want_b(n), want_h(n), want_l(65536 * 2);
  for (std::size_t i = 0; i < n; ++i) {
    want_b[i] = dyt::detail::float_to_bf16_bits(samples[i]);
    want_h[i] = dyt::detail::float_to_half_bits(samples[i]);
  }
  std::vector<dyt::half> all(65536);
  for (std::uint32_t i = 0; i < 65536; ++i) {
    all[i] = dyt::half::from_bits(static_cast<std::uint16_t>(i));
    const std::uint32_t f = bits(dyt::detail::half_bits_to_float(static_cast<std::uint16_t>(i)));
    want_l[2 * i] = static_cast<std::uint16_t>(f);
    want_l[2 * i + 1] = static_cast<std::uint16_t>(f >> 16);
  }

  const unsigned saved = _mm_getcsr();
  for (unsigned rc : {0x0000u /* nearest */, 0x2000u /* down */, 0x4000u /* up */, 0x6000u /* zero */}) {
    for (unsigned ftz_daz : {0x0000u, 0x8040u}) {
      CAPTURE(rc);
      CAPTURE(ftz_daz);
      std::vector<dyt::bfloat16> vb(n + 1), sb(n);
      std::vector<dyt::half> vh(n + 1), sh(n);
      std::vector<float> vl(65536), sl(65536);
      _mm_setcsr((saved & ~0xe040u) | rc | ftz_daz);
      for (std::size_t i = 0; i < n; i += W<float>) {
        const auto v = dyt::simd::batch<float>::load_unaligned(samples.data() + i);
        dyt::simd::store(vb.data() + 1 + i, v);
        dyt::simd::store(vh.data() + 1 + i, v);
      }
      for (std::size_t i = 0; i < n; ++i) {
        sb[i] = dyt::scalar_traits<dyt::bfloat16>::store(samples[i]);
        sh[i] = dyt::scalar_traits<dyt::half>::store(samples[i]);
      }
      for (std::size_t i = 0; i < 65536; i += W<float>) dyt::simd::load(all.data() + i).store_unaligned(vl.data() + i);
      for (std::size_t i = 0; i < 65536; ++i) sl[i] = dyt::scalar_traits<dyt::half>::load(all[i]);
      _mm_setcsr(saved);
      long bad = 0;
      for (std::size_t i = 0; i < n; ++i) {
        bad += vb[i + 1].bits != want_b[i] || sb[i].bits != want_b[i];
        bad += vh[i + 1].bits != want_h[i] || sh[i].bits != want_h[i];
      }
      CHECK(bad == 0);
      CHECK(std::memcmp(vl.data(), want_l.data(), 65536 * 4) == 0);
      CHECK(std::memcmp(sl.data(), want_l.data(), 65536 * 4) == 0);
    }
  }
}
#endif

// Every float through the vector and the scalar path, both formats: 10-15 s
// natively, so off by default; run with --no-skip.
TEST_CASE("convert: exhaustive over all 2^32 floats" * doctest::skip()) {
  constexpr int w = W<float>;
  long bad_b = 0, bad_h = 0;
  std::uint32_t first_b = 0, first_h = 0;
  alignas(64) float in[w];
  dyt::bfloat16 ob[w];
  dyt::half oh[w];
  std::uint64_t u = 0;
  while (u < (1ull << 32)) {
    for (int j = 0; j < w; ++j) in[j] = from_bits<float>(static_cast<std::uint32_t>(u + j));
    const auto v = dyt::simd::batch<float>::load_aligned(in);
    dyt::simd::store(ob, v);
    dyt::simd::store(oh, v);
    for (int j = 0; j < w; ++j) {
      if (ob[j].bits != dyt::detail::float_to_bf16_bits(in[j]) && bad_b++ == 0) first_b = static_cast<std::uint32_t>(u + j);
      if (oh[j].bits != dyt::detail::float_to_half_bits(in[j]) && bad_h++ == 0) first_h = static_cast<std::uint32_t>(u + j);
    }
    u += w;
  }
  CAPTURE(first_b);
  CAPTURE(first_h);
  CHECK(bad_b == 0);
  CHECK(bad_h == 0);
}

#endif  // DYT_USE_XSIMD
