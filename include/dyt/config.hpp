// dyt/config.hpp: version, portability macros and feature switches.
//
// Every switch is `#ifndef X / #define X default` so a user may set it before
// including any dyt header (or with -D on the command line).
#pragma once

#define DYT_VERSION_MAJOR 0
#define DYT_VERSION_MINOR 1
#define DYT_VERSION_PATCH 0

// Functions the math layer (ops/) shares between host and CUDA device code.
#if defined(__CUDACC__) || defined(__HIPCC__)
#define DYT_HOST_DEVICE __host__ __device__
#else
#define DYT_HOST_DEVICE
#endif

#if defined(_MSC_VER)
#define DYT_INLINE __forceinline
#else
#define DYT_INLINE inline __attribute__((always_inline))
#endif

// One out-of-line copy of a function for every caller. Used where two entry
// points must give bit-identical results: compilers contract a*b+c into FMAs
// differently in differently inlined or cloned copies of the same source.
#if defined(_MSC_VER)
#define DYT_NOINLINE __declspec(noinline)
#elif defined(__clang__) || defined(__CUDACC__)
#define DYT_NOINLINE __attribute__((noinline))
#else
#define DYT_NOINLINE __attribute__((noinline, noclone))
#endif

#if defined(__CUDA_ARCH__)
#define DYT_UNROLL _Pragma("unroll")
#elif defined(__clang__)
#define DYT_UNROLL _Pragma("clang loop unroll(enable)")
#elif defined(__GNUC__)
#define DYT_UNROLL _Pragma("GCC unroll 4")
#else
#define DYT_UNROLL
#endif

// DYT_USE_XSIMD: 1 to vectorize the CPU backend with xsimd, 0 for the portable
// scalar loops. Defaults to 1 when <xsimd/xsimd.hpp> is on the include path.
#ifndef DYT_USE_XSIMD
#if defined(__has_include)
#if __has_include(<xsimd/xsimd.hpp>) && !defined(__CUDACC__)
#define DYT_USE_XSIMD 1
#endif
#endif
#endif
#ifndef DYT_USE_XSIMD
#define DYT_USE_XSIMD 0
#endif

// DYT_PREFETCH_BYTES: how far ahead of each vector load the CPU backend asks
// for the cache line it will need, in bytes; 0 turns software prefetch off.
// One core alone keeps too few cache misses in flight to fill DRAM bandwidth
// when a row's per-channel parameters compete for L1 (bench/RESULTS.md).
#ifndef DYT_PREFETCH_BYTES
#define DYT_PREFETCH_BYTES 1024
#endif

// Whether the including translation unit has C++ exceptions. Every dyt entry
// point reports errors through dyt::status and never throws; only the optional
// dyt::check() convenience throws, and it aborts instead where exceptions are off.
#if defined(__cpp_exceptions) || defined(__EXCEPTIONS) || defined(_CPPUNWIND)
#define DYT_HAS_EXCEPTIONS 1
#else
#define DYT_HAS_EXCEPTIONS 0
#endif

// DYT_LIKELY(c): c, with a hint that it is almost always true.
#if defined(__GNUC__) || defined(__clang__)
#define DYT_LIKELY(c) __builtin_expect(!!(c), 1)
#else
#define DYT_LIKELY(c) (c)
#endif

#include <cstddef>

namespace dyt {
// Signed 64-bit index: rows * row_stride can exceed 2^31 on large tensors.
using index_t = std::ptrdiff_t;
}  // namespace dyt
