// fuzz/fuzz_support.hpp: what the harnesses share below the layer level:
// reading the input bytes, a seeded generator, the formats of the storage
// types, an arena of guarded, ASan-poisoned buffers, and failure reports.
#pragma once

#include <dyt/dyt.hpp>

#include <algorithm>
#include <cmath>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <new>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define FZ_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(FZ_ASAN)
#define FZ_ASAN 1
#endif
#ifndef FZ_ASAN
#define FZ_ASAN 0
#endif
#if FZ_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace fz {

using dyt::index_t;

// ---- Failures --------------------------------------------------------------
// A finding prints what was being checked (the case description set by the
// driver) and aborts, so libFuzzer saves the input as a crash file.

inline std::string& case_description() {
  static std::string s;
  return s;
}

// ASan reports end the process without our message: print the case with
// them. (Not __sanitizer_set_death_callback: that is libFuzzer's, which saves
// the crashing input.) For UBSan reports, rerun the input with
// DYT_FUZZ_VERBOSE=1, which prints every case before it runs.
inline void describe_case_on_death() {
#if FZ_ASAN
  static const bool once = [] {
    __asan_set_error_report_callback([](const char*) {
      std::fprintf(stderr, "\ncase: %s\n", case_description().c_str());
    });
    return true;
  }();
  (void)once;
#endif
}

#if defined(__GNUC__)
__attribute__((format(printf, 1, 2), noreturn))
#endif
inline void finding(const char* fmt, ...) {
  std::fprintf(stderr, "\n==== dyt fuzz FINDING ====\ncase: %s\n", case_description().c_str());
  va_list args;
  va_start(args, fmt);
  std::vfprintf(stderr, fmt, args);
  va_end(args);
  std::fprintf(stderr, "\n");
  std::fflush(stderr);
  std::abort();
}

// ---- Input bytes -------------------------------------------------------------
// Reads the fuzzer's bytes front to back; past the end every read is 0, so a
// short input is still a complete (mostly default) case.
class reader {
 public:
  reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  std::uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  std::uint16_t u16() { return std::uint16_t(u8() | (unsigned(u8()) << 8)); }
  std::uint32_t u32() { return std::uint32_t(u16()) | (std::uint32_t(u16()) << 16); }
  std::uint64_t u64() { return std::uint64_t(u32()) | (std::uint64_t(u32()) << 32); }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
};

// ---- A seeded generator (splitmix64) ------------------------------------------
struct prng {
  std::uint64_t s;
  std::uint64_t next() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
  }
  double unit() { return double(next() >> 11) * 0x1p-53; }  // [0, 1)
  double sym() { return 2 * unit() - 1; }                    // [-1, 1)
  double range(double lo, double hi) { return lo + (hi - lo) * unit(); }
  index_t below(index_t n) { return n > 0 ? index_t(next() % std::uint64_t(n)) : 0; }
  bool chance(double p) { return unit() < p; }
};

// ---- Storage formats -----------------------------------------------------------
template <class T>
struct fmt;
template <>
struct fmt<float> {
  using bits = std::uint32_t;
  static constexpr bits sign = 0x80000000u, inf = 0x7f800000u, qnan = 0x7fc00000u, max_finite = 0x7f7fffffu,
                        max_sub = 0x007fffffu, min_normal = 0x00800000u, payload = 0x003fffffu, canary = 0x7fa5a5a5u;
  static constexpr int precision = 24, min_exp = -126, max_exp = 128;
  static constexpr const char* name = "float";
};
template <>
struct fmt<double> {
  using bits = std::uint64_t;
  static constexpr bits sign = 0x8000000000000000u, inf = 0x7ff0000000000000u, qnan = 0x7ff8000000000000u,
                        max_finite = 0x7fefffffffffffffu, max_sub = 0x000fffffffffffffu,
                        min_normal = 0x0010000000000000u, payload = 0x0007ffffffffffffu,
                        canary = 0x7ff5a5a5a5a5a5a5u;
  static constexpr int precision = 53, min_exp = -1022, max_exp = 1024;
  static constexpr const char* name = "double";
};
template <>
struct fmt<dyt::bfloat16> {
  using bits = std::uint16_t;
  static constexpr bits sign = 0x8000, inf = 0x7f80, qnan = 0x7fc0, max_finite = 0x7f7f, max_sub = 0x007f,
                        min_normal = 0x0080, payload = 0x003f, canary = 0x7fa5;
  static constexpr int precision = 8, min_exp = -126, max_exp = 128;
  static constexpr const char* name = "bfloat16";
};
template <>
struct fmt<dyt::half> {
  using bits = std::uint16_t;
  static constexpr bits sign = 0x8000, inf = 0x7c00, qnan = 0x7e00, max_finite = 0x7bff, max_sub = 0x03ff,
                        min_normal = 0x0400, payload = 0x01ff, canary = 0x7da5;
  static constexpr int precision = 11, min_exp = -14, max_exp = 16;
  static constexpr const char* name = "half";
};

template <class T>
T from_bits(typename fmt<T>::bits b) {
  T v;
  std::memcpy(static_cast<void*>(&v), &b, sizeof v);
  return v;
}
template <class T>
typename fmt<T>::bits to_bits(const T& v) {
  typename fmt<T>::bits b;
  std::memcpy(&b, &v, sizeof b);
  return b;
}
template <class T>
double to_d(const T& v) {
  return double(dyt::scalar_traits<T>::load(v));
}
// Rounds to T (through float for 16-bit T, as the tests do).
template <class T>
T from_d(double v) {
  return dyt::scalar_traits<T>::store(dyt::compute_t<T>(v));
}
template <class T>
double max_finite() {
  return to_d(from_bits<T>(fmt<T>::max_finite));
}
// Half the spacing of T's values at magnitude m (the subnormal spacing below the normal range).
template <class T>
double half_ulp(double m) {
  int e = m > 0 && std::isfinite(m) ? std::ilogb(m) : fmt<T>::min_exp;
  e = std::max(e, fmt<T>::min_exp);
  return std::ldexp(1.0, e - fmt<T>::precision);
}

// A value of T from a special-value kind: NaNs (quiet, signalling, either
// sign, any payload), infinities, signed zeros, the subnormal and normal
// extremes, 1e18 and 1e30 (Inf in half), raw bits, and random huge or tiny
// magnitudes.
template <class T>
T special_value(std::uint8_t kind, std::uint64_t raw, prng& g) {
  using F = fmt<T>;
  using B = typename F::bits;
  const B neg = (raw & 1) ? F::sign : B(0);
  switch (kind % 20) {
    case 0: return from_bits<T>(B(F::qnan | neg));
    case 1: return from_bits<T>(B(F::inf | neg | (B(raw >> 1) & F::payload) | 1));  // signalling NaN
    case 2: return from_bits<T>(B(F::qnan | neg | (B(raw >> 1) & F::payload)));
    case 3: return from_bits<T>(F::inf);
    case 4: return from_bits<T>(B(F::inf | F::sign));
    case 5: return from_bits<T>(B(0));
    case 6: return from_bits<T>(F::sign);
    case 7: return from_bits<T>(B(1 | neg));
    case 8: return from_bits<T>(B(F::max_sub | neg));
    case 9: return from_bits<T>(B(F::min_normal | neg));
    case 10: return from_bits<T>(B(F::max_finite | neg));
    case 11: return from_d<T>((raw & 1) ? -1e18 : 1e18);
    case 12: return from_d<T>((raw & 1) ? -1e30 : 1e30);
    case 13: return from_bits<T>(B(raw));
    case 14: {  // huge: 2^e, e in [40, max_exp)
      const int e = 40 + int(g.below(F::max_exp - 40));
      return from_d<T>(std::ldexp((raw & 1) ? -g.range(1, 2) : g.range(1, 2), e - 1));
    }
    case 15: {  // tiny: 2^e, e from the subnormal bottom to -40
      const int lo = F::min_exp - F::precision;
      const int e = lo + int(g.below(-40 - lo));
      return from_d<T>(std::ldexp((raw & 1) ? -g.range(1, 2) : g.range(1, 2), e));
    }
    case 16: return from_bits<T>(B(F::max_finite - (raw % 7)));  // just below the largest finite value
    case 17: return from_d<T>((raw & 1) ? -65504.0 : 65504.0);
    case 18: return from_d<T>(std::ldexp(1.0, int(raw % 120) - 60));
    default: return from_bits<T>(B(F::sign | B(raw)));
  }
}

// ---- Arena -------------------------------------------------------------------------
// Every buffer one case touches lives in one allocation (64-byte aligned, so
// positions and misalignments are the same in every copy), each in a slot
// behind at least 16 guard bytes. The whole arena starts filled with T's
// canary (a signalling NaN with a recognisable payload, repeated), so a layer
// that reads a guard or a gap between rows computes with a NaN, and one that
// writes there changes a byte the checks compare. Under ASan, everything
// outside the memory a call may touch is also poisoned while it runs, so a
// stray read or write is reported at once; reads past the arena hit ASan's
// own redzones.
class arena {
 public:
  struct slot {
    std::size_t bytes, misalign, guard, offset;
  };

  // `bytes` bytes at `misalign` bytes past a 64-byte boundary, after `guard` guard bytes.
  // Offsets from the arena's 64-byte aligned base are known at once.
  int add(std::size_t bytes, std::size_t misalign, std::size_t guard) {
    slot s{bytes, misalign, std::max<std::size_t>(guard, 16), 0};
    end_ += s.guard;
    end_ = (end_ + 63) / 64 * 64 + s.misalign;
    s.offset = end_;
    end_ += s.bytes;
    slots_.push_back(s);
    return int(slots_.size()) - 1;
  }

  template <class T>
  void build() {
    size_ = end_ + 64;
    mem_ = allocate(size_);
    const auto c = fmt<T>::canary;
    for (std::size_t i = 0; i + sizeof c <= size_; i += sizeof c) std::memcpy(mem_ + i, &c, sizeof c);
  }

  arena() = default;
  arena(const arena& o) : slots_(o.slots_), end_(o.end_), size_(o.size_), mem_(allocate(o.size_)) {
    std::memcpy(mem_, o.mem_, size_);
  }
  arena& operator=(const arena&) = delete;
  ~arena() {
    if (mem_) {
      unpoison();
      ::operator delete[](mem_, std::align_val_t{64});
    }
  }

  unsigned char* base() const { return mem_; }
  std::size_t size() const { return size_; }
  const slot& at(int id) const { return slots_[std::size_t(id)]; }
  unsigned char* slot_ptr(int id) const { return mem_ + slots_[std::size_t(id)].offset; }

  // Poisons the whole arena, then unpoisons `runs` (byte offset, length).
  void poison_except(const std::vector<std::pair<std::size_t, std::size_t>>& runs) {
#if FZ_ASAN
    ASAN_POISON_MEMORY_REGION(mem_, size_);
    for (const auto& r : runs)
      if (r.second) ASAN_UNPOISON_MEMORY_REGION(mem_ + r.first, r.second);
#else
    (void)runs;
#endif
  }
  void unpoison() {
#if FZ_ASAN
    ASAN_UNPOISON_MEMORY_REGION(mem_, size_);
#endif
  }

 private:
  static unsigned char* allocate(std::size_t n) {
    return static_cast<unsigned char*>(::operator new[](n, std::align_val_t{64}));
  }
  std::vector<slot> slots_;
  std::size_t end_ = 0;
  std::size_t size_ = 0;
  unsigned char* mem_ = nullptr;
};

}  // namespace fz
