// bench/bench_cuda.cu: the CUDA backend against the device's own copy bandwidth.
//
// Every layer, f32 and bf16, forward and backward, at M x N in {1x4096, 32x4096,
// 4096x4096, 16384x4096, 16384x8192, 50432x768}, next to cudaMemcpyAsync
// device-to-device moving the same bytes (forward: read x + write y; backward:
// read x + read dy + write dx; parameters, statistics and gradients, all of size
// N or M, are not counted), and an empty kernel's launch for the decode shapes.
//
// Timing: CUDA events around batches of 10 launches queued back to back
// (UseManualTime; an iteration is one launch), after a warm-up;
// --benchmark_repetitions with the median reported (bench/gpu_table.py reads the
// JSON). Inputs are random (never zeros). Where one set of buffers fits in L2
// several times over, launches rotate through enough sets to cover 3x the L2.
// Backward uses saved statistics (as training does) and a workspace passed in.
// The fused residual add (forward_residual, backward_residual) runs beside an
// unfused add-then-layer pair and a copy of its 4 tensors' bytes.
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>
#include <vector>

#include <dyt/cuda.cuh>

namespace {

using dyt::index_t;

void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) {
    std::fprintf(stderr, "%s: %s\n", what, cudaGetErrorString(e));
    std::exit(1);
  }
}
void check_ok(const dyt::status& s) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s\n", s.message());
    std::exit(1);
  }
}

__global__ void fill_random(unsigned short* p, index_t n, std::uint64_t seed, bool is_float) {
  // is_float: p holds floats (two 16-bit halves each); else bf16.
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += index_t(gridDim.x) * blockDim.x) {
    std::uint64_t z = (std::uint64_t(i) + seed) * 0x9e3779b97f4a7c15u;
    z = (z ^ (z >> 31)) * 0xbf58476d1ce4e5b9u;
    const float v = float(z >> 40) * (4.0f / 16777216.0f) - 2.0f;  // [-2, 2)
    if (is_float) reinterpret_cast<float*>(p)[i] = v;
    else reinterpret_cast<__nv_bfloat16*>(p)[i] = __float2bfloat16_rn(v);
  }
}

template <class T>
void fill(T* p, index_t n, std::uint64_t seed) {
  fill_random<<<1024, 256>>>(reinterpret_cast<unsigned short*>(p), n, seed, sizeof(T) == 4);
  check(cudaGetLastError(), "fill");
}

__global__ void empty_kernel() {}

int l2_bytes() {
  static int bytes = [] {
    int dev = 0, b = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    check(cudaDeviceGetAttribute(&b, cudaDevAttrL2CacheSize, dev), "L2 size");
    return b;
  }();
  return bytes;
}

// How many buffer sets to rotate through so that they cover 3x the L2.
index_t rotation(std::size_t set_bytes) {
  const std::size_t want = 3 * std::size_t(l2_bytes());
  index_t sets = index_t((want + set_bytes - 1) / set_bytes);
  return sets < 1 ? 1 : (sets > 4096 ? 4096 : sets);
}

// Times fn(i) for the i-th launch with events around a batch of kLaunches
// launches queued back to back, as a model's stream runs them; an iteration's
// time is the batch's over kLaunches. (Events around a single launch would
// also count the host's submission of it, about 5 us, to an idle device.)
constexpr int kLaunches = 10;

template <class F>
void timed_loop(benchmark::State& state, index_t sets, F&& fn) {
  cudaEvent_t start, stop;
  check(cudaEventCreate(&start), "event");
  check(cudaEventCreate(&stop), "event");
  index_t i = 0;
  for (int w = 0; w < 3; ++w) fn(i++ % sets);  // warm-up
  check(cudaDeviceSynchronize(), "warm-up");
  for (auto _ : state) {
    check(cudaEventRecord(start), "record");
    for (int l = 0; l < kLaunches; ++l) fn(i++ % sets);
    check(cudaEventRecord(stop), "record");
    check(cudaEventSynchronize(stop), "sync");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, start, stop), "elapsed");
    state.SetIterationTime(double(ms) * 1e-3 / kLaunches);
  }
  check(cudaGetLastError(), "launch");
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
}

void report(benchmark::State& state, double bytes) {
  state.SetBytesProcessed(std::int64_t(bytes) * state.iterations());
  state.counters["bytes"] = bytes;
}

template <class T>
struct device_array {
  T* p = nullptr;
  explicit device_array(std::size_t n) { check(cudaMalloc(&p, n * sizeof(T) + 16), "cudaMalloc"); }
  ~device_array() { cudaFree(p); }
};

// ---- The copy baseline ------------------------------------------------------------
// Moves `moved` bytes: reads half of them, writes the other half.
void bm_copy_bytes(benchmark::State& state, std::size_t moved) {
  const std::size_t bytes = moved / 2;
  const index_t sets = rotation(2 * bytes);
  device_array<unsigned char> src(bytes * std::size_t(sets)), dst(bytes * std::size_t(sets));
  fill(reinterpret_cast<unsigned short*>(src.p), index_t(bytes * std::size_t(sets) / 2), 1);
  timed_loop(state, sets, [&](index_t s) {
    check(cudaMemcpyAsync(dst.p + std::size_t(s) * bytes, src.p + std::size_t(s) * bytes, bytes,
                          cudaMemcpyDeviceToDevice),
          "copy");
  });
  report(state, 2.0 * double(bytes));
}

// tensors = 2 (forward's bytes), 3 (backward's) or 4 (the residual passes') of T.
template <class T>
void bm_copy(benchmark::State& state, index_t m, index_t n, int tensors) {
  bm_copy_bytes(state, std::size_t(m) * std::size_t(n) * sizeof(T) * std::size_t(tensors));
}

void bm_empty(benchmark::State& state) {
  timed_loop(state, 1, [](index_t) { empty_kernel<<<1, 32>>>(); });
  report(state, 0);
}

// ---- The layers -----------------------------------------------------------------------
template <class T>
struct params {
  device_array<T> alpha{1}, shift{1}, gamma, beta, dalpha{1}, dshift{1}, dgamma, dbeta;
  explicit params(index_t n) : gamma(std::size_t(n)), beta(std::size_t(n)), dgamma(std::size_t(n)), dbeta(std::size_t(n)) {
    fill(gamma.p, n, 11);
    fill(beta.p, n, 12);
    fill(alpha.p, 1, 13);
    fill(shift.p, 1, 14);
  }
};

// The point-wise layers (DyT, Derf, DyISRU): the same calls; Derf also has a shift.
template <class Layer>
struct pointwise_bench {
  using T = typename Layer::value_type;
  using layer_t = Layer;
  static constexpr bool pointwise = true;
  static constexpr bool has_shift = std::is_same<Layer, dyt::Derf<T, dyt::cuda>>::value;
  static layer_t make(params<T>& p, index_t n) {
    if constexpr (has_shift)
      return layer_t(p.alpha.p, p.shift.p, p.gamma.p, p.beta.p, n);
    else
      return layer_t(p.alpha.p, p.gamma.p, p.beta.p, n);
  }
  static typename layer_t::gradients grads(params<T>& p) {
    typename layer_t::gradients g;
    g.dalpha = p.dalpha.p;
    g.dgamma = p.dgamma.p;
    g.dbeta = p.dbeta.p;
    if constexpr (has_shift) g.dshift = p.dshift.p;
    return g;
  }
  static dyt::status forward(const layer_t& l, dyt::rows_view<const T> x, dyt::rows_view<T> y, float*, float*) {
    return l.forward(x, y, nullptr);
  }
  static dyt::status backward(const layer_t& l, dyt::rows_view<const T> x, dyt::rows_view<const T> dy,
                              dyt::rows_view<T> dx, params<T>& p, const float*, const float*, dyt::device_workspace ws) {
    return l.backward(x, dy, dx, grads(p), nullptr, dyt::grad_mode::overwrite, ws);
  }
  static dyt::status forward_residual(const layer_t& l, dyt::rows_view<const T> x, dyt::rows_view<T> h,
                                      dyt::rows_view<T> y) {
    return l.forward_residual(x, h, y, nullptr);
  }
  static dyt::status backward_residual(const layer_t& l, dyt::rows_view<const T> h, dyt::rows_view<const T> dy,
                                       dyt::rows_view<const T> dh, dyt::rows_view<T> dx, params<T>& p, const float*,
                                       const float*, dyt::device_workspace ws) {
    return l.backward_residual(h, dy, dh, dx, grads(p), nullptr, dyt::grad_mode::overwrite, ws);
  }
};
template <class T>
using dyt_bench = pointwise_bench<dyt::DyT<T, dyt::cuda>>;
template <class T>
struct ln_bench {
  using layer_t = dyt::LayerNorm<T, dyt::cuda>;
  static constexpr bool pointwise = false;
  static layer_t make(params<T>& p, index_t n) { return layer_t(p.gamma.p, p.beta.p, n); }
  static dyt::status forward(const layer_t& l, dyt::rows_view<const T> x, dyt::rows_view<T> y, float* mean,
                             float* rstd) {
    return mean ? l.forward(x, y, {mean, rstd}, nullptr) : l.forward(x, y, nullptr);
  }
  static dyt::status backward(const layer_t& l, dyt::rows_view<const T> x, dyt::rows_view<const T> dy,
                              dyt::rows_view<T> dx, params<T>& p, const float* mean, const float* rstd,
                              dyt::device_workspace ws) {
    return l.backward(x, dy, dx, {p.dgamma.p, p.dbeta.p}, nullptr, dyt::grad_mode::overwrite, {mean, rstd}, ws);
  }
  static dyt::status forward_residual(const layer_t& l, dyt::rows_view<const T> x, dyt::rows_view<T> h,
                                      dyt::rows_view<T> y) {
    return l.forward_residual(x, h, y, nullptr);
  }
  static dyt::status backward_residual(const layer_t& l, dyt::rows_view<const T> h, dyt::rows_view<const T> dy,
                                       dyt::rows_view<const T> dh, dyt::rows_view<T> dx, params<T>& p,
                                       const float* mean, const float* rstd, dyt::device_workspace ws) {
    return l.backward_residual(h, dy, dh, dx, {p.dgamma.p, p.dbeta.p}, nullptr, dyt::grad_mode::overwrite,
                               {mean, rstd}, ws);
  }
};
template <class T>
struct rms_bench {
  using layer_t = dyt::RMSNorm<T, dyt::cuda>;
  static constexpr bool pointwise = false;
  static layer_t make(params<T>& p, index_t n) { return layer_t(p.gamma.p, n); }
  static dyt::status forward(const layer_t& l, dyt::rows_view<const T> x, dyt::rows_view<T> y, float*, float* rstd) {
    return rstd ? l.forward(x, y, {nullptr, rstd}, nullptr) : l.forward(x, y, nullptr);
  }
  static dyt::status backward(const layer_t& l, dyt::rows_view<const T> x, dyt::rows_view<const T> dy,
                              dyt::rows_view<T> dx, params<T>& p, const float*, const float* rstd,
                              dyt::device_workspace ws) {
    return l.backward(x, dy, dx, {p.dgamma.p}, nullptr, dyt::grad_mode::overwrite, {nullptr, rstd}, ws);
  }
  static dyt::status forward_residual(const layer_t& l, dyt::rows_view<const T> x, dyt::rows_view<T> h,
                                      dyt::rows_view<T> y) {
    return l.forward_residual(x, h, y, nullptr);
  }
  static dyt::status backward_residual(const layer_t& l, dyt::rows_view<const T> h, dyt::rows_view<const T> dy,
                                       dyt::rows_view<const T> dh, dyt::rows_view<T> dx, params<T>& p, const float*,
                                       const float* rstd, dyt::device_workspace ws) {
    return l.backward_residual(h, dy, dh, dx, {p.dgamma.p}, nullptr, dyt::grad_mode::overwrite, {nullptr, rstd}, ws);
  }
};

template <class L, class T>
void bm_forward(benchmark::State& state, index_t m, index_t n) {
  const std::size_t elems = std::size_t(m) * std::size_t(n);
  const index_t sets = rotation(2 * elems * sizeof(T));
  device_array<T> x(elems * std::size_t(sets)), y(elems * std::size_t(sets));
  fill(x.p, index_t(elems) * sets, 1);
  params<T> p(n);
  const auto layer = L::make(p, n);
  timed_loop(state, sets, [&](index_t s) {
    check_ok(L::forward(layer, {x.p + std::size_t(s) * elems, m, n}, {y.p + std::size_t(s) * elems, m, n}, nullptr,
                     nullptr));
  });
  report(state, 2.0 * double(elems * sizeof(T)));
}

// The quantized forward (issue 6 part 2): x read, one-byte codes written (and
// a scale a row, dynamic, or cols scales read, static: negligible beside them).
// Static: the point-wise layers' static_scales; dynamic: every layer.
template <class L, class T, class Q>
void bm_forward_quantized(benchmark::State& state, index_t m, index_t n, bool per_channel) {
  const std::size_t elems = std::size_t(m) * std::size_t(n);
  const index_t sets = rotation(elems * (sizeof(T) + 1));
  device_array<T> x(elems * std::size_t(sets));
  device_array<Q> q(elems * std::size_t(sets));
  device_array<float> scales(std::size_t(m > n ? m : n) * std::size_t(sets));
  fill(x.p, index_t(elems) * sets, 1);
  params<T> p(n);
  const auto layer = L::make(p, n);
  if constexpr (L::pointwise)
    if (per_channel) check_ok(layer.template static_scales<Q>(scales.p, nullptr));
  timed_loop(state, sets, [&](index_t s) {
    const dyt::rows_view<const T> xs{x.p + std::size_t(s) * elems, m, n};
    const dyt::rows_view<Q> qs{q.p + std::size_t(s) * elems, m, n};
    if constexpr (L::pointwise) {
      if (per_channel) {
        check_ok(layer.forward_quantized(xs, qs, dyt::per_channel_scale<float>{scales.p}, nullptr));
        return;
      }
    }
    check_ok(layer.forward_quantized(xs, qs, dyt::per_row_scale<float>{scales.p + std::size_t(s) * std::size_t(m)},
                                     nullptr));
  });
  report(state, double(elems * (sizeof(T) + 1)));
}

template <class L, class T>
void bm_backward(benchmark::State& state, index_t m, index_t n) {
  const std::size_t elems = std::size_t(m) * std::size_t(n);
  const index_t sets = rotation(3 * elems * sizeof(T));
  device_array<T> x(elems * std::size_t(sets)), dy(elems * std::size_t(sets)), dx(elems * std::size_t(sets));
  device_array<float> mean(std::size_t(m) * std::size_t(sets)), rstd(std::size_t(m) * std::size_t(sets));
  fill(x.p, index_t(elems) * sets, 1);
  fill(dy.p, index_t(elems) * sets, 2);
  params<T> p(n);
  const auto layer = L::make(p, n);
  for (index_t s = 0; s < sets; ++s)  // the statistics a training forward saves
    check_ok(L::forward(layer, {x.p + std::size_t(s) * elems, m, n}, {dx.p + std::size_t(s) * elems, m, n},
                     mean.p + s * m, rstd.p + s * m));
  const std::size_t ws_bytes = layer.workspace_bytes(m);
  device_array<unsigned char> ws(ws_bytes);
  timed_loop(state, sets, [&](index_t s) {
    check_ok(L::backward(layer, {x.p + std::size_t(s) * elems, m, n}, {dy.p + std::size_t(s) * elems, m, n},
                      {dx.p + std::size_t(s) * elems, m, n}, p, mean.p + s * m, rstd.p + s * m,
                      {ws.p, ws_bytes}));
  });
  report(state, 3.0 * double(elems * sizeof(T)));
}

// ---- The fused residual add (issue 6) ---------------------------------------------------
// forward_residual moves 4 tensors (read x and the residual, write the new
// residual and y), backward_residual 4 (read h, dy and dh, write dx); the copy
// baseline "copy/res" moves as many bytes. The unfused pair is what a user
// writes without it: an element-wise add kernel, then the layer (forward:
// h = x + residual in place, then forward(h); backward: backward, then
// dx += dh), measured here with the same bytes counted, so its GB/s compares
// as time.
template <class T>
__global__ void add_rows(T* out, const T* in, index_t n) {
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += index_t(gridDim.x) * blockDim.x)
    out[i] = T(float(out[i]) + float(in[i]));
}
template <>
__global__ void add_rows<__nv_bfloat16>(__nv_bfloat16* out, const __nv_bfloat16* in, index_t n) {
  // Two values a thread (bfloat162), as PyTorch's vectorized add does at least.
  const index_t pairs = n / 2;
  auto* o2 = reinterpret_cast<__nv_bfloat162*>(out);
  const auto* i2 = reinterpret_cast<const __nv_bfloat162*>(in);
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < pairs; i += index_t(gridDim.x) * blockDim.x)
    o2[i] = __hadd2(o2[i], i2[i]);
  if (n % 2 && blockIdx.x == 0 && threadIdx.x == 0) out[n - 1] = __hadd(out[n - 1], in[n - 1]);
}
template <class T>
void add_into(T* out, const T* in, index_t n) {
  int sms = 0, dev = 0;
  check(cudaGetDevice(&dev), "cudaGetDevice");
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "SM count");
  add_rows<T><<<unsigned(sms * 8), 256>>>(out, in, n);
}

template <class L, class T>
void bm_forward_residual(benchmark::State& state, index_t m, index_t n, bool fused) {
  const std::size_t elems = std::size_t(m) * std::size_t(n);
  const index_t sets = rotation(3 * elems * sizeof(T));
  device_array<T> x(elems * std::size_t(sets)), res(elems * std::size_t(sets)), y(elems * std::size_t(sets));
  fill(x.p, index_t(elems) * sets, 1);
  fill(res.p, index_t(elems) * sets, 3);
  params<T> p(n);
  const auto layer = L::make(p, n);
  timed_loop(state, sets, [&](index_t s) {
    const std::size_t o = std::size_t(s) * elems;
    if (fused) {
      check_ok(L::forward_residual(layer, {x.p + o, m, n}, {res.p + o, m, n}, {y.p + o, m, n}));
    } else {
      add_into(res.p + o, x.p + o, index_t(elems));
      check_ok(L::forward(layer, {res.p + o, m, n}, {y.p + o, m, n}, nullptr, nullptr));
    }
  });
  report(state, 4.0 * double(elems * sizeof(T)));
}

template <class L, class T>
void bm_backward_residual(benchmark::State& state, index_t m, index_t n, bool fused) {
  const std::size_t elems = std::size_t(m) * std::size_t(n);
  const index_t sets = rotation(4 * elems * sizeof(T));
  device_array<T> h(elems * std::size_t(sets)), dy(elems * std::size_t(sets)), dh(elems * std::size_t(sets)),
      dx(elems * std::size_t(sets));
  device_array<float> mean(std::size_t(m) * std::size_t(sets)), rstd(std::size_t(m) * std::size_t(sets));
  fill(h.p, index_t(elems) * sets, 1);
  fill(dy.p, index_t(elems) * sets, 2);
  fill(dh.p, index_t(elems) * sets, 4);
  params<T> p(n);
  const auto layer = L::make(p, n);
  for (index_t s = 0; s < sets; ++s)
    check_ok(L::forward(layer, {h.p + std::size_t(s) * elems, m, n}, {dx.p + std::size_t(s) * elems, m, n},
                     mean.p + s * m, rstd.p + s * m));
  const std::size_t ws_bytes = layer.workspace_bytes(m);
  device_array<unsigned char> ws(ws_bytes);
  timed_loop(state, sets, [&](index_t s) {
    const std::size_t o = std::size_t(s) * elems;
    if (fused) {
      check_ok(L::backward_residual(layer, {h.p + o, m, n}, {dy.p + o, m, n}, {dh.p + o, m, n}, {dx.p + o, m, n}, p,
                                    mean.p + s * m, rstd.p + s * m, {ws.p, ws_bytes}));
    } else {
      check_ok(L::backward(layer, {h.p + o, m, n}, {dy.p + o, m, n}, {dx.p + o, m, n}, p, mean.p + s * m,
                           rstd.p + s * m, {ws.p, ws_bytes}));
      add_into(dx.p + o, dh.p + o, index_t(elems));
    }
  });
  report(state, 4.0 * double(elems * sizeof(T)));
}

struct shape {
  index_t m, n;
};
const shape kShapes[] = {{1, 4096}, {32, 4096}, {4096, 4096}, {16384, 4096}, {16384, 8192}, {50432, 768}};

template <class L, class T, class Reg>
void register_residual(const Reg& reg, const char* layer, const char* tname, const std::string& dims, index_t m,
                       index_t n) {
  const std::string at = std::string("/") + tname + "/" + dims;
  for (bool fused : {true, false}) {
    const std::string tail = fused ? "" : "-unfused";
    reg(layer + ("/fwdres" + tail) + at, [=](benchmark::State& st) { bm_forward_residual<L, T>(st, m, n, fused); });
    reg(layer + ("/bwdres" + tail) + at, [=](benchmark::State& st) { bm_backward_residual<L, T>(st, m, n, fused); });
  }
}

// "<layer>/fwd-<q>[-static]/<type>/<dims>": int8 and E4M3, dynamic per-row
// scales (every layer) and static per-channel ones (the point-wise layers).
template <class L, class T, class Reg>
void register_quantized(const Reg& reg, const char* layer, const char* tname, const std::string& dims, index_t m,
                        index_t n) {
  const std::string at = std::string("/") + tname + "/" + dims;
  for (bool per_channel : {false, true}) {
    if (per_channel && !L::pointwise) continue;
    const std::string tail = per_channel ? "-static" : "";
    reg(layer + ("/fwd-int8" + tail) + at,
        [=](benchmark::State& st) { bm_forward_quantized<L, T, std::int8_t>(st, m, n, per_channel); });
    reg(layer + ("/fwd-e4m3" + tail) + at,
        [=](benchmark::State& st) { bm_forward_quantized<L, T, dyt::float8_e4m3>(st, m, n, per_channel); });
  }
}

template <class T>
void register_type(const char* tname) {
  for (const shape& s : kShapes) {
    const std::string dims = std::to_string(s.m) + "x" + std::to_string(s.n);
    auto reg = [&](const std::string& name, auto fn) {
      benchmark::RegisterBenchmark(name.c_str(), fn)->UseManualTime()->Unit(benchmark::kMicrosecond);
    };
    const index_t m = s.m, n = s.n;
    reg("copy/fwd/" + std::string(tname) + "/" + dims, [=](benchmark::State& st) { bm_copy<T>(st, m, n, 2); });
    reg("copy/bwd/" + std::string(tname) + "/" + dims, [=](benchmark::State& st) { bm_copy<T>(st, m, n, 3); });
    reg(std::string("DyT/fwd/") + tname + "/" + dims, [=](benchmark::State& st) { bm_forward<dyt_bench<T>, T>(st, m, n); });
    reg(std::string("DyT/bwd/") + tname + "/" + dims, [=](benchmark::State& st) { bm_backward<dyt_bench<T>, T>(st, m, n); });
    reg(std::string("LayerNorm/fwd/") + tname + "/" + dims, [=](benchmark::State& st) { bm_forward<ln_bench<T>, T>(st, m, n); });
    reg(std::string("LayerNorm/bwd/") + tname + "/" + dims, [=](benchmark::State& st) { bm_backward<ln_bench<T>, T>(st, m, n); });
    reg(std::string("RMSNorm/fwd/") + tname + "/" + dims, [=](benchmark::State& st) { bm_forward<rms_bench<T>, T>(st, m, n); });
    reg(std::string("RMSNorm/bwd/") + tname + "/" + dims, [=](benchmark::State& st) { bm_backward<rms_bench<T>, T>(st, m, n); });
    // The fused residual add: ours fused ("fwdres"/"bwdres"), ours unfused ("...-unfused"), copy of the same bytes.
    reg("copy/res/" + std::string(tname) + "/" + dims, [=](benchmark::State& st) { bm_copy<T>(st, m, n, 4); });
    // Derf and DyISRU beside DyT (issue 6 part 3): the same kernels with erff / the ISRU.
    using derf = pointwise_bench<dyt::Derf<T, dyt::cuda>>;
    using dyisru = pointwise_bench<dyt::DyISRU<T, dyt::cuda>>;
    reg(std::string("Derf/fwd/") + tname + "/" + dims, [=](benchmark::State& st) { bm_forward<derf, T>(st, m, n); });
    reg(std::string("Derf/bwd/") + tname + "/" + dims, [=](benchmark::State& st) { bm_backward<derf, T>(st, m, n); });
    reg(std::string("DyISRU/fwd/") + tname + "/" + dims, [=](benchmark::State& st) { bm_forward<dyisru, T>(st, m, n); });
    reg(std::string("DyISRU/bwd/") + tname + "/" + dims, [=](benchmark::State& st) { bm_backward<dyisru, T>(st, m, n); });
    // The quantized forward: x in, one-byte codes out; copy of those bytes.
    const std::size_t q_bytes = std::size_t(m) * std::size_t(n) * (sizeof(T) + 1);
    reg("copy/q/" + std::string(tname) + "/" + dims, [=](benchmark::State& st) { bm_copy_bytes(st, q_bytes); });
    register_quantized<dyt_bench<T>, T>(reg, "DyT", tname, dims, m, n);
    register_quantized<ln_bench<T>, T>(reg, "LayerNorm", tname, dims, m, n);
    register_quantized<rms_bench<T>, T>(reg, "RMSNorm", tname, dims, m, n);
    register_residual<dyt_bench<T>, T>(reg, "DyT", tname, dims, m, n);
    register_residual<ln_bench<T>, T>(reg, "LayerNorm", tname, dims, m, n);
    register_residual<rms_bench<T>, T>(reg, "RMSNorm", tname, dims, m, n);
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::RegisterBenchmark("empty_kernel", bm_empty)->UseManualTime()->Unit(benchmark::kMicrosecond);
  register_type<float>("f32");
  register_type<__nv_bfloat16>("bf16");
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
