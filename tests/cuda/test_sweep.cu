// tests/cuda/test_sweep.cu: reliability of the CUDA layers (issue 7), a binary
// of its own (dyt_test_cuda_sweep) beside dyt_test_cuda.
//
// 1. Random sweep. From a seed and a case count, each case draws a layer
//    (DyT, LayerNorm, RMSNorm), a storage type (float, bf16, half), a pass
//    (forward, forward saving statistics, backward recomputing them, backward
//    from saved ones; overwrite or accumulate; in about 3 cases in 10 the
//    fused residual pass instead: forward_residual, backward_residual), which
//    parameters exist, the shape (1..300 rows; 1..~9000 columns, biased to
//    awkward widths and to the widths where the launcher changes path), each
//    view's row stride and base offset (0..7 elements past a 256-byte
//    boundary), in-place aliasing (y == x, dx == x, dx == dy; for
//    backward_residual dx == h, dx == dy, dx == dh), caller or cudaMallocAsync
//    workspace, and default or own stream. Every element is held to the
//    float64 reference within truth.hpp's bounds; every output sits between
//    canary guards that must come back untouched, and every input must come
//    back unchanged.
// 2. Determinism: per layer and type, forward (saving statistics) and both
//    backward modes on multi-block shapes and on the loop paths, 100 times:
//    every output bit-identical to the first run (compared on the device).
// 3. Streams: nine layer/type jobs on nine non-blocking streams at once, with
//    cudaMallocAsync workspaces and with the caller's: the bits of each job
//    run alone on the default stream.
// 4. Edges, as docs/numerics.md and tests/test_edges.cpp fix them on the CPU:
//    rows of equal values, rows up to 1e18 and FLT_MAX in float and of the
//    largest bf16 and half values, eps = 0, DyT's alpha = 0 and alpha < 0,
//    NaN in x or dy.
//
// Environment:
//   DYT_SWEEP_SEED   the sweep's seed (default 20260417; "random" draws one);
//                    printed at start
//   DYT_SWEEP_CASES  cases in the sweep (default 300)
//   DYT_SWEEP_ONLY   run only this case of the sweep
//   DYT_SWEEP_QUICK  1: 3 determinism runs on small shapes, smaller sweep
//                    cases and edge shapes (for compute-sanitizer)
// A failing case prints its parameters and the line that reruns it alone:
//   DYT_SWEEP_SEED=<seed> DYT_SWEEP_ONLY=<case> build-cuda/bin/cuda/dyt_test_cuda_sweep -tc="sweep*"
// (its data come from the seed and the case number only; DYT_TEST_SEED, which
// support.hpp's seed_for uses, moves the edge tests' data and nothing else).
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <dyt/cuda.cuh>

#include "device.hpp"
#include "truth.hpp"

namespace {

using namespace dyt_test;
using dyt::grad_mode;
using bf16 = __nv_bfloat16;

// ---- Settings ----------------------------------------------------------------------------
struct sweep_settings {
  std::uint64_t seed = 20260417;
  long cases = 300;
  long only = -1;
  bool quick = false;
};

const sweep_settings& settings() {
  static const sweep_settings s = [] {
    sweep_settings v;
    const char* seed = std::getenv("DYT_SWEEP_SEED");
    if (seed && *seed) {
      if (std::string(seed) == "random") {
        std::random_device rd;
        v.seed = (std::uint64_t(rd()) << 32) ^ rd();
      } else {
        v.seed = std::strtoull(seed, nullptr, 10);
      }
    }
    const char* cases = std::getenv("DYT_SWEEP_CASES");
    if (cases && *cases) v.cases = std::strtol(cases, nullptr, 10);
    const char* only = std::getenv("DYT_SWEEP_ONLY");
    if (only && *only) v.only = std::strtol(only, nullptr, 10);
    const char* quick = std::getenv("DYT_SWEEP_QUICK");
    v.quick = quick && *quick && *quick != '0';
    std::fprintf(stderr, "dyt_test_cuda_sweep: DYT_SWEEP_SEED=%llu DYT_SWEEP_CASES=%ld%s%s\n",
                 static_cast<unsigned long long>(v.seed), v.cases, v.quick ? " DYT_SWEEP_QUICK=1" : "",
                 v.only >= 0 ? (" DYT_SWEEP_ONLY=" + std::to_string(v.only)).c_str() : "");
    return v;
  }();
  return s;
}

bool quick() { return settings().quick; }

template <class T>
std::string type_label() {
  if (dyt::format_of<T>::value == dyt::format::f32) return "float";
  if (dyt::format_of<T>::value == dyt::format::bf16) return "bf16";
  return "half";
}

// Exponent bits of T: all set means Inf or NaN.
template <class T>
constexpr std::uint32_t exponent_mask() {
  return dyt::format_of<T>::value == dyt::format::f32    ? 0x7f800000u
         : dyt::format_of<T>::value == dyt::format::bf16 ? 0x7f80u
                                                         : 0x7c00u;
}

// Uniform integer in [0, n).
index_t below(rng& g, index_t n) { return std::min<index_t>(n - 1, index_t(g.uniform(0, double(n)))); }

// ---- Guarded device buffers ---------------------------------------------------------------
// A download: the whole window of a device_rows, next to what was uploaded into it.
template <class T>
struct host_rows {
  index_t rows = 0, cols = 0, stride = 0, lead = 0;
  std::vector<T> got, sent;

  const T& at(index_t r, index_t c) const { return got[std::size_t(lead + r * stride + c)]; }
  double get(index_t r, index_t c) const { return to_double(at(r, c)); }
  bool inside(std::size_t i) const {
    const index_t k = index_t(i) - lead;
    return k >= 0 && k < (rows - 1) * stride + cols && k % stride < cols;
  }
  // Elements outside the view whose bits changed: writes past the view.
  long stray_writes() const {
    long n = 0;
    for (std::size_t i = 0; i < got.size(); ++i)
      if (!inside(i) && !same_bits(got[i], sent[i])) ++n;
    return n;
  }
  // Elements anywhere whose bits changed (an input must come back as it went).
  long changes() const {
    long n = 0;
    for (std::size_t i = 0; i < got.size(); ++i)
      if (!same_bits(got[i], sent[i])) ++n;
    return n;
  }
};

// rows x cols at `stride` on the device, starting `shift` elements past a
// 256-byte boundary (guard is a multiple of 16 bytes for every T, so shift
// alone sets the view's alignment), with kGuard elements either side. Every
// element outside the view, the gaps between rows included, holds T's
// canary (support.hpp's signalling NaN), and the host keeps what it uploaded.
template <class T>
class device_rows {
 public:
  static constexpr index_t kGuard = 64;

  device_rows(index_t rows, index_t cols, index_t stride, int shift)
      : rows_(rows), cols_(cols), stride_(stride), lead_(kGuard + shift),
        sent_(std::size_t(lead_ + (rows - 1) * stride + cols + kGuard), guarded<T>::canary()) {
    CUDA_REQUIRE(cudaMalloc(&base_, sent_.size() * sizeof(T)));
    push();
  }
  ~device_rows() { cudaFree(base_); }
  device_rows(const device_rows&) = delete;
  device_rows& operator=(const device_rows&) = delete;

  T* data() const { return static_cast<T*>(base_) + lead_; }
  index_t stride() const { return stride_; }
  dyt::rows_view<T> view() const { return {data(), rows_, cols_, stride_}; }
  dyt::rows_view<const T> cview() const { return {data(), rows_, cols_, stride_}; }

  // The view's values from a host buffer of the same shape (any layout).
  void upload(const guarded<T>& h) {
    for (index_t r = 0; r < rows_; ++r)
      for (index_t c = 0; c < cols_; ++c) sent_[std::size_t(lead_ + r * stride_ + c)] = h.at(r, c);
    push();
  }
  // Waits for the device, then brings the whole window back.
  host_rows<T> fetch() const {
    host_rows<T> h;
    h.rows = rows_;
    h.cols = cols_;
    h.stride = stride_;
    h.lead = lead_;
    h.sent = sent_;
    h.got.resize(sent_.size());
    CUDA_REQUIRE(cudaDeviceSynchronize());
    CUDA_REQUIRE(cudaMemcpy(h.got.data(), base_, sent_.size() * sizeof(T), cudaMemcpyDeviceToHost));
    return h;
  }

 private:
  // A copy from pageable memory may still be in flight when cudaMemcpy
  // returns; work on a non-blocking stream is not ordered after it, so wait.
  void push() {
    CUDA_REQUIRE(cudaMemcpy(base_, sent_.data(), sent_.size() * sizeof(T), cudaMemcpyHostToDevice));
    CUDA_REQUIRE(cudaDeviceSynchronize());
  }

  index_t rows_, cols_, stride_, lead_;
  std::vector<T> sent_;
  void* base_ = nullptr;
};

// A non-blocking stream for one scope, or the legacy default stream.
struct scoped_stream {
  cudaStream_t s = nullptr;
  explicit scoped_stream(bool own = false) {
    if (own) CUDA_REQUIRE(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  }
  ~scoped_stream() {
    if (s) {
      cudaStreamSynchronize(s);
      cudaStreamDestroy(s);
    }
  }
  scoped_stream(const scoped_stream&) = delete;
  scoped_stream& operator=(const scoped_stream&) = delete;
};

// ---- Checks against the float64 truth -------------------------------------------------------
// Every element of rows [first, end) of `got` against e with support.hpp's error
// model for the CUDA backend (rounded: stored as T; otherwise a float statistic).
// A NaN or an infinity in the truth must come back as the same. Also: nothing
// outside the view written.
template <class T, class U>
void check_output(const std::string& what, const host_rows<U>& got, const expected_output& e, bool rounded = true,
                  index_t first = 0, index_t end = -1) {
  using model = error_model<T, dyt::cuda>;
  const std::string label = what + " / " + type_label<T>() + " / cuda";
  const long stray = got.stray_writes();
  CHECK_MESSAGE(stray == 0, label << ": " << stray << " element(s) written outside the view");
  error_check check(label);
  if (end < 0) end = got.rows;
  for (index_t r = first; r < end; ++r)
    for (index_t c = 0; c < got.cols; ++c) {
      const double g = got.get(r, c), ref = e.ref(r, c);
      if (std::isnan(ref)) {
        check.add_exact(r, c, g, ref, std::isnan(g));
      } else if (std::isinf(ref)) {
        check.add_exact(r, c, g, ref, g == ref);
      } else {
        const double k = e.k(r, c, model::u);
        check.add(r, c, g, ref, rounded ? model::bound(g, ref, k, e.scale(r, c)) : model::compute_bound(k, e.scale(r, c)));
      }
    }
}

template <class U>
void check_unchanged(const std::string& what, const host_rows<U>& h) {
  const long n = h.changes();
  CHECK_MESSAGE(n == 0, what << ": an input came back with " << n << " element(s) changed");
}

// An output that must equal `want` bit for bit (forward_residual's new
// residual), with nothing outside its view written.
template <class T>
void check_bits(const std::string& what, const host_rows<T>& got, const guarded<T>& want) {
  const std::string label = what + " / " + type_label<T>() + " / cuda";
  const long stray = got.stray_writes();
  CHECK_MESSAGE(stray == 0, label << ": " << stray << " element(s) written outside the view");
  long differ = 0;
  char first[160] = "";
  for (index_t r = 0; r < got.rows; ++r)
    for (index_t c = 0; c < got.cols; ++c)
      if (!same_bits(got.at(r, c), want.at(r, c)) && differ++ == 0)
        std::snprintf(first, sizeof first, "first at (%lld, %lld): got %a, expected %a", static_cast<long long>(r),
                      static_cast<long long>(c), got.get(r, c), want.get(r, c));
  CHECK_MESSAGE(differ == 0, label << ": " << differ << " element(s) differ; " << first);
}

// The truth after grad_mode::accumulate onto prior values g0: the float sum of
// the fresh gradient and g0 rounds once more, u (|ref| + |g0|) at most, so one
// more unit of k on scale + |g0| (scale >= |ref|).
expected_output plus_prior(const expected_output& e, const std::vector<double>& g0) {
  expected_output s = e;
  for (index_t c = 0; c < e.ref.cols; ++c) {
    const double g = g0[std::size_t(c)];
    s.ref.v[std::size_t(c)] += g;
    s.set_bound(0, c, e.k0(0, c) + 1, e.scale(0, c) + std::fabs(g), e.k1(0, c));
  }
  return s;
}

// The truth of backward_residual's dx = dh + the layer's dx. The kernels add
// dh to the layer's dx in float and round the sum once to T (ops::plus), so,
// as for accumulated gradients above (and test_cuda.cu's run_residual_case),
// the float sum rounds once more, u (|ref| + |dh|) at most: one more unit of k
// on scale + |dh| (scale >= |ref|). The one rounding to T is the store that
// model::bound already allows for: no extra half ulp of T.
expected_output plus_dh(const expected_output& e, const dense& dh) {
  expected_output s = e;
  for (index_t r = 0; r < e.ref.rows; ++r)
    for (index_t c = 0; c < e.ref.cols; ++c) {
      const double d = dh(r, c);
      s.ref.v[std::size_t(r * e.ref.cols + c)] += d;
      s.set_bound(r, c, e.k0(r, c) + 1, e.scale(r, c) + std::fabs(d), e.k1(r, c));
    }
  return s;
}

// An absolute term added to the bound of (r, c), in the units k counts.
void add_absolute(expected_output& e, index_t r, index_t c, double extra) {
  const double unit = (0x1p-24 + 0x1p-53) * e.scale(r, c);
  if (extra > 0 && unit > 0) e.k0.v[std::size_t(r * e.ref.cols + c)] += extra / unit;
}

// ---- The layers, called alike ------------------------------------------------------------------
}  // namespace

// What differs between the layers (a named namespace: nvcc reports members of
// internal-linkage classes that one instantiation leaves unused).
namespace dyt_sweep {
template <class L>
struct layer_info;
template <class T, class Tanh>
struct layer_info<dyt::DyT<T, dyt::cuda, Tanh>> {
  static constexpr bool saves_mean = false, saves_rstd = false;
  static constexpr unsigned grads = 7;  // dgamma, dbeta, dalpha
  static constexpr const char* name = "DyT";
};
template <class T>
struct layer_info<dyt::LayerNorm<T, dyt::cuda>> {
  static constexpr bool saves_mean = true, saves_rstd = true;
  static constexpr unsigned grads = 3;
  static constexpr const char* name = "LayerNorm";
};
template <class T>
struct layer_info<dyt::RMSNorm<T, dyt::cuda>> {
  static constexpr bool saves_mean = false, saves_rstd = true;
  static constexpr unsigned grads = 1;
  static constexpr const char* name = "RMSNorm";
};
}  // namespace dyt_sweep

namespace {
using dyt_sweep::layer_info;

template <class T, class Tanh>
dyt::status run_forward(const dyt::DyT<T, dyt::cuda, Tanh>& l, dyt::rows_view<const T> x, dyt::rows_view<T> y, float*,
                        float*, cudaStream_t s) {
  return l.forward(x, y, s);
}
template <class T>
dyt::status run_forward(const dyt::LayerNorm<T, dyt::cuda>& l, dyt::rows_view<const T> x, dyt::rows_view<T> y,
                        float* mean, float* rstd, cudaStream_t s) {
  return l.forward(x, y, {mean, rstd}, s);
}
template <class T>
dyt::status run_forward(const dyt::RMSNorm<T, dyt::cuda>& l, dyt::rows_view<const T> x, dyt::rows_view<T> y, float*,
                        float* rstd, cudaStream_t s) {
  return l.forward(x, y, {nullptr, rstd}, s);
}

// Gradient outputs by slot: 0 dgamma, 1 dbeta, 2 dalpha (truth.hpp's order).
template <class T>
struct grad_set {
  T* p[3] = {nullptr, nullptr, nullptr};
};

template <class T, class Tanh>
dyt::status run_backward(const dyt::DyT<T, dyt::cuda, Tanh>& l, dyt::rows_view<const T> x, dyt::rows_view<const T> dy,
                         dyt::rows_view<T> dx, const grad_set<T>& g, grad_mode mode, const float*, const float*,
                         dyt::device_workspace ws, cudaStream_t s) {
  typename dyt::DyT<T, dyt::cuda, Tanh>::gradients grads;
  grads.dgamma = g.p[0];
  grads.dbeta = g.p[1];
  grads.dalpha = g.p[2];
  return l.backward(x, dy, dx, grads, s, mode, ws);
}
template <class T>
dyt::status run_backward(const dyt::LayerNorm<T, dyt::cuda>& l, dyt::rows_view<const T> x, dyt::rows_view<const T> dy,
                         dyt::rows_view<T> dx, const grad_set<T>& g, grad_mode mode, const float* mean,
                         const float* rstd, dyt::device_workspace ws, cudaStream_t s) {
  typename dyt::LayerNorm<T, dyt::cuda>::gradients grads;
  grads.dgamma = g.p[0];
  grads.dbeta = g.p[1];
  return l.backward(x, dy, dx, grads, s, mode, {mean, rstd}, ws);
}
template <class T>
dyt::status run_backward(const dyt::RMSNorm<T, dyt::cuda>& l, dyt::rows_view<const T> x, dyt::rows_view<const T> dy,
                         dyt::rows_view<T> dx, const grad_set<T>& g, grad_mode mode, const float*, const float* rstd,
                         dyt::device_workspace ws, cudaStream_t s) {
  typename dyt::RMSNorm<T, dyt::cuda>::gradients grads;
  grads.dgamma = g.p[0];
  return l.backward(x, dy, dx, grads, s, mode, {nullptr, rstd}, ws);
}

// The fused residual passes: forward_residual (residual <- x + residual, then
// y = layer(residual)) and backward_residual (dx = dh + the layer's dx at h).
template <class T, class Tanh>
dyt::status run_forward_residual(const dyt::DyT<T, dyt::cuda, Tanh>& l, dyt::rows_view<const T> x,
                                 dyt::rows_view<T> residual, dyt::rows_view<T> y, float*, float*, cudaStream_t s) {
  return l.forward_residual(x, residual, y, s);
}
template <class T>
dyt::status run_forward_residual(const dyt::LayerNorm<T, dyt::cuda>& l, dyt::rows_view<const T> x,
                                 dyt::rows_view<T> residual, dyt::rows_view<T> y, float* mean, float* rstd,
                                 cudaStream_t s) {
  return l.forward_residual(x, residual, y, {mean, rstd}, s);
}
template <class T>
dyt::status run_forward_residual(const dyt::RMSNorm<T, dyt::cuda>& l, dyt::rows_view<const T> x,
                                 dyt::rows_view<T> residual, dyt::rows_view<T> y, float*, float* rstd,
                                 cudaStream_t s) {
  return l.forward_residual(x, residual, y, {nullptr, rstd}, s);
}

template <class T, class Tanh>
dyt::status run_backward_residual(const dyt::DyT<T, dyt::cuda, Tanh>& l, dyt::rows_view<const T> h,
                                  dyt::rows_view<const T> dy, dyt::rows_view<const T> dh, dyt::rows_view<T> dx,
                                  const grad_set<T>& g, grad_mode mode, const float*, const float*,
                                  dyt::device_workspace ws, cudaStream_t s) {
  typename dyt::DyT<T, dyt::cuda, Tanh>::gradients grads;
  grads.dgamma = g.p[0];
  grads.dbeta = g.p[1];
  grads.dalpha = g.p[2];
  return l.backward_residual(h, dy, dh, dx, grads, s, mode, ws);
}
template <class T>
dyt::status run_backward_residual(const dyt::LayerNorm<T, dyt::cuda>& l, dyt::rows_view<const T> h,
                                  dyt::rows_view<const T> dy, dyt::rows_view<const T> dh, dyt::rows_view<T> dx,
                                  const grad_set<T>& g, grad_mode mode, const float* mean, const float* rstd,
                                  dyt::device_workspace ws, cudaStream_t s) {
  typename dyt::LayerNorm<T, dyt::cuda>::gradients grads;
  grads.dgamma = g.p[0];
  grads.dbeta = g.p[1];
  return l.backward_residual(h, dy, dh, dx, grads, s, mode, {mean, rstd}, ws);
}
template <class T>
dyt::status run_backward_residual(const dyt::RMSNorm<T, dyt::cuda>& l, dyt::rows_view<const T> h,
                                  dyt::rows_view<const T> dy, dyt::rows_view<const T> dh, dyt::rows_view<T> dx,
                                  const grad_set<T>& g, grad_mode mode, const float*, const float* rstd,
                                  dyt::device_workspace ws, cudaStream_t s) {
  typename dyt::RMSNorm<T, dyt::cuda>::gradients grads;
  grads.dgamma = g.p[0];
  return l.backward_residual(h, dy, dh, dx, grads, s, mode, {nullptr, rstd}, ws);
}

// The tanh policy's error in float ulp on the device: tanhf is within 2 ulp
// (CUDA C Programming Guide, the single-precision ulp table), the 2.2 the CPU
// tests use covers it; tanh.approx.f32 is within 2^-10.987 relative (PTX ISA),
// and a float ulp is at least 2^-23 of the value: 2^(23 - 10.987) < 4133 ulp.
template <class Tanh>
constexpr double device_tanh_ulps() {
  return std::is_same<dyt::cuda_detail::device_tanh_t<Tanh>, dyt::tanh_approx>::value ? 4133.0 : 2.2;
}

// Which parameters a layer has.
struct param_choice {
  bool gamma = true, beta = true, one_plus = false;
};

template <class T, class Tanh>
fwd::forward_truth forward_truth_for(const dyt::DyT<T, dyt::cuda, Tanh>&, const problem<T>& p, const param_choice& c) {
  return fwd::dyt_truth(p, fwd::dyt_variant{0, "sweep", c.gamma, c.beta}, device_tanh_ulps<Tanh>());
}
template <class T>
fwd::forward_truth forward_truth_for(const dyt::LayerNorm<T, dyt::cuda>&, const problem<T>& p, const param_choice& c) {
  return fwd::layer_norm_truth(p, fwd::ln_variant{0, "sweep", c.gamma, c.beta});
}
template <class T>
fwd::forward_truth forward_truth_for(const dyt::RMSNorm<T, dyt::cuda>&, const problem<T>& p, const param_choice& c) {
  return fwd::rms_norm_truth(
      p, fwd::rms_variant{0, "sweep", c.gamma, c.one_plus ? dyt::gamma_form::one_plus : dyt::gamma_form::plain});
}

// DyT's dalpha on the device: each thread adds up all of its elements over all
// of its rows before the warp, team, block and slot sums, so one term can pass
// through more additions than the CPU's n + rows - 1 that truth.hpp counts.
// No term passes through more than rows * cols - 1 additions in any summation
// tree of rows * cols terms, so k = rows * cols + 4p + 3 (truth.hpp's per-term
// 4p + 2 and its unit of slack) holds for any grid.
template <class T>
void widen_dalpha_for_cuda(bwd::backward_truth& t, const problem<T>& p, double ulps) {
  const double scale = t.grad[2].scale(0, 0);
  t.grad[2].set_bound(0, 0, double(p.rows) * double(p.cols) + 4 * ulps + 3, scale);
}

template <class T, class Tanh>
bwd::backward_truth backward_truth_for(const dyt::DyT<T, dyt::cuda, Tanh>&, const problem<T>& p,
                                       const param_choice& c) {
  bwd::backward_truth t = bwd::dyt_truth(p, bwd::dyt_variant{0, "sweep", c.gamma, c.beta}, device_tanh_ulps<Tanh>());
  widen_dalpha_for_cuda(t, p, device_tanh_ulps<Tanh>());
  return t;
}
template <class T>
bwd::backward_truth backward_truth_for(const dyt::LayerNorm<T, dyt::cuda>&, const problem<T>& p,
                                       const param_choice& c) {
  return bwd::layer_norm_truth(p, bwd::ln_variant{0, "sweep", c.gamma, c.beta});
}
template <class T>
bwd::backward_truth backward_truth_for(const dyt::RMSNorm<T, dyt::cuda>&, const problem<T>& p, const param_choice& c) {
  return bwd::rms_norm_truth(
      p, bwd::rms_variant{0, "sweep", c.gamma, c.one_plus ? dyt::gamma_form::one_plus : dyt::gamma_form::plain});
}

// ============================================================================================
// 1. The random sweep
// ============================================================================================
enum pass_kind { pass_forward, pass_forward_stats, pass_backward, pass_backward_saved };
const char* const kPassNames[] = {"forward", "forward saving statistics", "backward (statistics recomputed)",
                                  "backward (saved statistics, after a forward saving them)"};
// The same passes fused with the residual add (sweep_case::residual).
const char* const kResidualPassNames[] = {
    "forward_residual (residual <- x + residual, y = layer(residual))", "forward_residual saving statistics",
    "backward_residual (h = x, statistics recomputed)",
    "backward_residual (h = the residual after a forward_residual saving statistics, saved statistics)"};
const char* const kLayerNames[] = {"DyT", "LayerNorm", "RMSNorm"};
const char* const kTypeNames[] = {"float", "bf16", "half"};

struct sweep_case {
  long index = 0;
  std::uint64_t seed = 0;       // the sweep's seed
  std::uint64_t data_seed = 0;  // the case's inputs
  int layer = 0, type = 0, pass = 0;
  bool residual = false;  // the pass as forward_residual or backward_residual
  bool accumulate = false;
  param_choice params;
  index_t rows = 1, cols = 1;
  index_t x_stride = 1, dy_stride = 1, out_stride = 1;
  int x_shift = 0, dy_shift = 0, out_shift = 0, param_shift = 0, grad_shift = 0;
  index_t res_stride = 1, dh_stride = 1;  // residual: the residual stream's view and dh's
  int res_shift = 0, dh_shift = 0;
  // 0: a separate output; 1: y == x (forward) or dx == x (dx == h for
  // backward_residual); 2: dx == dy; 3: dx == dh (backward_residual only)
  int in_place = 0;
  bool caller_workspace = false, own_stream = false;

  std::string describe() const {
    std::ostringstream s;
    s << "sweep case " << index << " (rerun alone: DYT_SWEEP_SEED=" << seed << " DYT_SWEEP_ONLY=" << index << "): "
      << kLayerNames[layer] << " " << kTypeNames[type] << ", " << (residual ? kResidualPassNames : kPassNames)[pass];
    if (pass >= pass_backward) s << (accumulate ? ", accumulate" : ", overwrite");
    if (layer == 2) s << (params.gamma ? (params.one_plus ? ", (1 + gamma)" : ", gamma") : ", no gamma");
    else s << (params.gamma ? ", gamma" : ", no gamma") << (params.beta ? ", beta" : ", no beta");
    s << "; " << rows << " x " << cols << "; x stride " << x_stride << " shift " << x_shift << ", dy stride "
      << dy_stride << " shift " << dy_shift << ", output stride " << out_stride << " shift " << out_shift
      << ", parameters shift " << param_shift << ", gradients shift " << grad_shift;
    if (residual && pass != pass_backward) s << ", residual stride " << res_stride << " shift " << res_shift;
    if (residual && pass >= pass_backward) s << ", dh stride " << dh_stride << " shift " << dh_shift;
    if (in_place == 1) s << (pass < pass_backward ? "; y == x" : residual ? "; dx == h" : "; dx == x");
    if (in_place == 2) s << "; dx == dy";
    if (in_place == 3) s << "; dx == dh";
    s << (caller_workspace ? "; caller workspace" : "; cudaMallocAsync workspace")
      << (own_stream ? "; own stream" : "; default stream");
    return s.str();
  }
};

// Columns: awkward widths, widths where the launcher (launch.cuh's plan())
// changes path, multiples of the 16-byte vector width and one off them, and
// anything.
index_t draw_cols(rng& g, index_t vec) {
  static const index_t awkward[] = {1,    2,    3,    5,    7,    17,   31,   33,   63,   65,   127,
                                    129,  255,  257,  767,  768,  769,  1023, 1024, 1025, 2047, 2049,
                                    3072, 4095, 4096, 4097, 5120, 8191, 8192, 8193, 8200, 8999};
  // 16-byte vectors per row at which plan() moves from one engine to the next:
  // one warp with 1, 2 and K_warp (3 for 16-bit; 4 forward, 6 backward for
  // float) vectors a thread up to 32, 64, 96, 128, 192 vectors; teams of up
  // to 16 warps up to 1024 (16-bit backward, DyT's 16-bit forward) or 2048
  // vectors; the loop engine beyond. Each, and one vector more.
  static const index_t path_edges[] = {32, 33, 64, 65, 96, 97, 128, 129, 192, 193, 1024, 1025, 2048, 2049};
  const double pick = g.uniform(0, 1);
  if (pick < 0.3) return awkward[below(g, index_t(sizeof awkward / sizeof awkward[0]))];
  if (pick < 0.5) {
    const index_t v = path_edges[below(g, index_t(sizeof path_edges / sizeof path_edges[0]))];
    const index_t off[] = {0, 0, -1, 1};  // on the vector path, or just off it
    return std::max<index_t>(1, v * vec + off[below(g, 4)]);
  }
  if (pick < 0.8) return std::max<index_t>(1, (1 + below(g, 9000 / vec)) * vec + below(g, 3) - 1);
  return 1 + below(g, 9000);
}

index_t round_up(index_t v, index_t m) { return (v + m - 1) / m * m; }

sweep_case draw_case(std::uint64_t seed, long index) {
  rng g(mix(mix(seed, 0x73776565705f6361u), std::uint64_t(index)));
  sweep_case c;
  c.index = index;
  c.seed = seed;
  c.data_seed = mix(mix(seed, 0x64617461u), std::uint64_t(index));
  c.layer = int(below(g, 3));
  c.type = int(below(g, 3));
  c.pass = int(below(g, 4));
  c.accumulate = c.pass >= pass_backward && g.chance(0.5);
  if (c.layer == 2) {
    const double p = g.uniform(0, 1);
    c.params.gamma = p >= 0.2;
    c.params.one_plus = p >= 0.65;
    c.params.beta = false;
  } else {
    c.params.gamma = g.chance(0.75);
    c.params.beta = g.chance(c.layer == 0 ? 0.6 : 0.75);
  }
  const index_t vec = c.type == 0 ? 4 : 8;  // elements in 16 bytes
  c.cols = draw_cols(g, vec);
  const double rp = g.uniform(0, 1);
  c.rows = rp < 0.15 ? 1 : rp < 0.3 ? 2 + below(g, 7) : 1 + below(g, 300);
  // Keeps the host's float64 truth quick: at most 2^19 elements (2^16 under
  // DYT_SWEEP_QUICK, where the sanitizers slow every access).
  const index_t budget = quick() ? (index_t(1) << 16) : (index_t(1) << 19);
  c.rows = std::max<index_t>(1, std::min(c.rows, budget / c.cols));
  if (quick()) c.rows = std::min<index_t>(c.rows, 64);

  // Half the cases keep every view and parameter 16-byte aligned (the vector
  // paths need all of them so); the rest draw each alignment on its own.
  const bool aligned = g.chance(0.5);
  auto stride = [&](rng& from) -> index_t {
    if (from.chance(0.5)) return c.cols;
    if (aligned) return round_up(c.cols, vec) + vec * below(from, 4);
    return c.cols + 1 + below(from, 67);
  };
  auto shift = [&](rng& from) -> int { return aligned || from.chance(0.4) ? 0 : int(1 + below(from, 7)); };
  c.x_stride = stride(g);
  c.dy_stride = stride(g);
  c.out_stride = stride(g);
  c.x_shift = shift(g);
  c.dy_shift = shift(g);
  c.out_shift = shift(g);
  c.param_shift = shift(g);
  c.grad_shift = int(below(g, 8));
  if (g.chance(0.25)) {
    if (c.pass < pass_backward) c.in_place = 1;
    else c.in_place = 1 + int(below(g, 2));
  }
  c.caller_workspace = g.chance(0.5);
  c.own_stream = g.chance(0.3);

  // The fused residual passes, from draws of their own: a case that stays
  // unfused is the case it was before they were added. Their aliasing is drawn
  // anew: y == x 3 in 10; dx == dh (the in-place use), dx == h, dx == dy and
  // a dx of its own 1 in 4 each.
  rng rg(mix(mix(seed, 0x7265736964u), std::uint64_t(index)));
  c.residual = rg.chance(0.3);
  if (c.residual) {
    c.res_stride = stride(rg);
    c.res_shift = shift(rg);
    c.dh_stride = stride(rg);
    c.dh_shift = shift(rg);
    const double a = rg.uniform(0, 1);
    if (c.pass < pass_backward) c.in_place = a < 0.3 ? 1 : 0;
    else c.in_place = a < 0.25 ? 3 : a < 0.5 ? 1 : a < 0.75 ? 2 : 0;
  }
  if (c.in_place == 1 && c.pass < pass_backward) {  // y == x
    c.out_stride = c.x_stride;
    c.out_shift = c.x_shift;
  }
  return c;
}

// The fused residual passes' inputs: the residual stream and dh (a second
// problem's x and dy, from draws of their own), each in a view of its own, and
// the problem the layer sees behind forward_residual: p with x replaced by
// h = round_T(float(x) + float(residual)), as the kernels add (in float,
// rounded once to T as a store rounds it; test_cuda.cu holds them to it bit
// for bit), so that the truth of y, the statistics and the backward on h is
// the plain passes' truth on that h, held to the same bounds.
template <class T>
struct residual_inputs {
  problem<T> q;  // q.x: the residual stream; q.dy: dh
  problem<T> h;  // p with x := h
  device_rows<T> residual, dh;

  residual_inputs(const sweep_case& c, layer_kind kind, const problem<T>& p, rng&& g)
      : q(kind, c.rows, c.cols, dense_aligned, g),
        h(p),
        residual(c.rows, c.cols, c.res_stride, c.res_shift),
        dh(c.rows, c.cols, c.dh_stride, c.dh_shift) {
    for (index_t r = 0; r < c.rows; ++r)
      for (index_t k = 0; k < c.cols; ++k) h.x.set(r, k, double(float(p.x.get(r, k)) + float(q.x.get(r, k))));
    h.xd = dense(h.x);
    residual.upload(q.x);
    dh.upload(q.dy);
  }
};

// One case, with its layer built over the device parameters; res: the fused
// residual passes' inputs, null for the plain passes.
template <class T, class Layer>
void exercise(const sweep_case& c, const problem<T>& p, residual_inputs<T>* res, device_rows<T>& x,
              device_rows<T>& dy, const std::vector<const device_rows<T>*>& params, const Layer& layer) {
  using info = layer_info<Layer>;
  const index_t rows = c.rows, cols = c.cols;
  scoped_stream stream(c.own_stream);
  const bool backward = c.pass >= pass_backward;
  const bool save = c.pass == pass_forward_stats || c.pass == pass_backward_saved;
  device_rows<float> mean(1, rows, rows, 0), rstd(1, rows, rows, 0);
  float* mean_p = info::saves_mean && save ? mean.data() : nullptr;
  float* rstd_p = info::saves_rstd && save ? rstd.data() : nullptr;
  // The layer's input: x, or h = x + residual once forward_residual has run
  // (backward_residual with statistics recomputed takes x itself as h).
  const bool after_residual = res && c.pass != pass_backward;
  const problem<T>& input = after_residual ? res->h : p;

  // Forward: the pass itself, or the one whose statistics the backward uses.
  if (!backward || c.pass == pass_backward_saved) {
    const fwd::forward_truth ft = forward_truth_for(layer, input, c.params);
    const bool in_place = !backward && c.in_place == 1;
    std::unique_ptr<device_rows<T>> own_y;
    if (!in_place) own_y = std::make_unique<device_rows<T>>(rows, cols, c.out_stride, c.out_shift);
    device_rows<T>& y = in_place ? x : *own_y;
    const dyt::status st =
        res ? run_forward_residual(layer, x.cview(), res->residual.view(), y.view(), mean_p, rstd_p, stream.s)
            : run_forward(layer, x.cview(), y.view(), mean_p, rstd_p, stream.s);
    CHECK_MESSAGE(st.ok(), std::string(st.message()));
    if (!st.ok()) return;
    check_output<T>(std::string(res ? "y of forward_residual" : "y") + (in_place ? " (y == x)" : ""), y.fetch(), ft.y);
    if (mean_p) check_output<T>("mean", mean.fetch(), ft.mean, false);
    if (rstd_p) check_output<T>("rstd", rstd.fetch(), ft.rstd, false);
    if (!in_place) check_unchanged("x", x.fetch());
    if (res) {
      check_bits("residual <- x + residual", res->residual.fetch(), res->h.x);
      // What the device holds now (h, just checked) becomes what the backward's
      // check of its inputs expects back.
      res->residual.upload(res->h.x);
    }
  }
  if (backward) {
    const bwd::backward_truth bt = backward_truth_for(layer, input, c.params);
    REQUIRE((bt.grads & ~info::grads) == 0u);
    // Gradient outputs: canaries (NaN) to overwrite, or random prior values to accumulate onto.
    std::unique_ptr<device_rows<T>> grads[3];
    std::vector<double> prior[3];
    grad_set<T> gs;
    rng g(mix(c.data_seed, 0x707269u));
    for (int i = 0; i < 3; ++i) {
      if (!(bt.grads & (1u << i))) continue;
      const index_t n = i == 2 ? 1 : cols;
      grads[i] = std::make_unique<device_rows<T>>(1, n, n, c.grad_shift);
      if (c.accumulate) {
        guarded<T> h(1, n);
        for (index_t k = 0; k < n; ++k) h.set(0, k, g.uniform(-2, 2));
        grads[i]->upload(h);
        for (index_t k = 0; k < n; ++k) prior[i].push_back(h.get(0, k));
      }
      gs.p[i] = grads[i]->data();
    }
    // The layer's input row by row: x, or backward_residual's h.
    device_rows<T>& h = after_residual ? res->residual : x;
    std::unique_ptr<device_rows<T>> own_dx;
    if (c.in_place == 0) own_dx = std::make_unique<device_rows<T>>(rows, cols, c.out_stride, c.out_shift);
    device_rows<T>& dx = c.in_place == 1 ? h : c.in_place == 2 ? dy : c.in_place == 3 ? res->dh : *own_dx;
    void* ws_base = nullptr;
    dyt::device_workspace ws;
    if (c.caller_workspace) {
      const std::size_t bytes = layer.workspace_bytes(rows);
      if (bytes) {
        // Any 16-byte aligned start and any size from what it asks for up.
        const std::size_t offset = 16 * std::size_t(below(g, 4)), extra = 4 * std::size_t(below(g, 64));
        CUDA_REQUIRE(cudaMalloc(&ws_base, bytes + offset + extra));
        ws = {static_cast<unsigned char*>(ws_base) + offset, bytes + extra};
      }
    }
    const grad_mode mode = c.accumulate ? grad_mode::accumulate : grad_mode::overwrite;
    const float* saved_mean = c.pass == pass_backward_saved ? mean_p : nullptr;
    const float* saved_rstd = c.pass == pass_backward_saved ? rstd_p : nullptr;
    const dyt::status st = res ? run_backward_residual(layer, h.cview(), dy.cview(), res->dh.cview(), dx.view(), gs,
                                                       mode, saved_mean, saved_rstd, ws, stream.s)
                               : run_backward(layer, x.cview(), dy.cview(), dx.view(), gs, mode, saved_mean,
                                              saved_rstd, ws, stream.s);
    CHECK_MESSAGE(st.ok(), std::string(st.message()));
    if (st.ok()) {
      static const char* const dx_labels[] = {"dx", "dx (dx == x)", "dx (dx == dy)"};
      static const char* const dh_dx_labels[] = {"dh + dx", "dh + dx (dx == h)", "dh + dx (dx == dy)",
                                                 "dh + dx (dx == dh)"};
      if (res) check_output<T>(dh_dx_labels[c.in_place], dx.fetch(), plus_dh(bt.dx, res->q.dyd));
      else check_output<T>(dx_labels[c.in_place], dx.fetch(), bt.dx);
      const std::string grad_suffix =
          std::string(res ? " (backward_residual)" : "") + (c.accumulate ? " (accumulate)" : "");
      for (int i = 0; i < 3; ++i)
        if (grads[i])
          check_output<T>(bwd::kGradNames[i] + grad_suffix, grads[i]->fetch(),
                          c.accumulate ? plus_prior(bt.grad[i], prior[i]) : bt.grad[i]);
      if (c.in_place != 1) check_unchanged(res ? "h" : "x", h.fetch());
      if (c.in_place != 2) check_unchanged("dy", dy.fetch());
      if (res && c.in_place != 3) check_unchanged("dh", res->dh.fetch());
    }
    CUDA_REQUIRE(cudaDeviceSynchronize());
    cudaFree(ws_base);
  }
  for (const device_rows<T>* q : params) check_unchanged("a parameter", q->fetch());
}

template <class T>
void run_case_as(const sweep_case& c) {
  const layer_kind kind = c.layer == 0 ? layer_kind::dyt : c.layer == 1 ? layer_kind::layer_norm : layer_kind::rms_norm;
  rng g(c.data_seed);
  problem<T> p(kind, c.rows, c.cols, dense_aligned, g);
  device_rows<T> x(c.rows, c.cols, c.x_stride, c.x_shift), dy(c.rows, c.cols, c.dy_stride, c.dy_shift);
  x.upload(p.x);
  dy.upload(p.dy);
  device_rows<T> alpha(1, 1, 1, c.param_shift), gamma(1, c.cols, c.cols, c.param_shift),
      beta(1, c.cols, c.cols, c.param_shift);
  alpha.upload(p.alpha);
  gamma.upload(p.gamma);
  beta.upload(p.beta);
  std::unique_ptr<residual_inputs<T>> res;
  if (c.residual) res = std::make_unique<residual_inputs<T>>(c, kind, p, rng(mix(c.data_seed, 0x7265736964u)));
  const std::vector<const device_rows<T>*> params = {&alpha, &gamma, &beta};
  const T* gp = c.params.gamma ? gamma.data() : nullptr;
  const T* bp = c.params.beta ? beta.data() : nullptr;
  residual_inputs<T>* r = res.get();
  switch (c.layer) {
    case 0: exercise(c, p, r, x, dy, params, dyt::DyT<T, dyt::cuda>(alpha.data(), gp, bp, c.cols)); break;
    case 1: exercise(c, p, r, x, dy, params, dyt::LayerNorm<T, dyt::cuda>(gp, bp, c.cols, kLayerNormEps)); break;
    default:
      exercise(c, p, r, x, dy, params,
               dyt::RMSNorm<T, dyt::cuda>(gp, c.cols, kRmsNormEps,
                                          c.params.one_plus ? dyt::gamma_form::one_plus : dyt::gamma_form::plain));
      break;
  }
}

}  // namespace

TEST_CASE("sweep: random layers, types, passes, shapes, strides, offsets and aliasing against the float64 reference") {
  const sweep_settings& s = settings();
  const long last = std::max(s.cases, s.only + 1);
  long fused[2] = {0, 0};  // cases run as forward_residual, as backward_residual
  for (long i = 0; i < last; ++i) {
    if (s.only >= 0 && i != s.only) continue;
    const sweep_case c = draw_case(s.seed, i);
    INFO(c.describe());
    if (c.residual) ++fused[c.pass >= pass_backward];
    switch (c.type) {
      case 0: run_case_as<float>(c); break;
      case 1: run_case_as<bf16>(c); break;
      default: run_case_as<__half>(c); break;
    }
  }
  // Each fused pass is drawn in 15% of the cases: of 300 or more, fewer than
  // 1 in 20 comes with probability below 1e-7 for any seed; fewer means the
  // draw is broken.
  if (s.only < 0 && s.cases >= 300) {
    const bool enough = fused[0] >= s.cases / 20 && fused[1] >= s.cases / 20;
    CHECK_MESSAGE(enough, "fused residual passes drawn: " << fused[0] << " forward, " << fused[1] << " backward");
  }
}

// ============================================================================================
// 2 and 3. Whole-tensor jobs: determinism and concurrent streams
// ============================================================================================
namespace {

__host__ __device__ inline float unit_hash(std::uint64_t i, std::uint64_t salt) {
  std::uint64_t z = (i ^ (salt * 0xd1b54a32d192ed03u)) * 0x9e3779b97f4a7c15u;
  z ^= z >> 31;
  z *= 0xbf58476d1ce4e5b9u;
  z ^= z >> 29;
  return float(z >> 40) * 0x1p-24f;  // [0, 1)
}

template <class T>
__global__ void fill_uniform(T* p, index_t n, std::uint64_t salt, float lo, float hi) {
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += index_t(gridDim.x) * blockDim.x)
    p[i] = dyt::scalar_traits<T>::store(lo + (hi - lo) * unit_hash(std::uint64_t(i), salt));
}

// Adds the number of differing 32-bit words of a and b to *count.
__global__ void count_differences(const std::uint32_t* a, const std::uint32_t* b, std::size_t words,
                                  unsigned long long* count) {
  for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < words;
       i += std::size_t(gridDim.x) * blockDim.x)
    if (a[i] != b[i]) atomicAdd(count, 1ull);
}

// Adds the number of Inf and NaN elements (all exponent bits set) to *count.
__global__ void count_nonfinite(const void* p, index_t n, int elem_bytes, std::uint32_t mask,
                                unsigned long long* count) {
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += index_t(gridDim.x) * blockDim.x) {
    const std::uint32_t bits =
        elem_bytes == 4 ? static_cast<const std::uint32_t*>(p)[i] : static_cast<const std::uint16_t*>(p)[i];
    if ((bits & mask) == mask) atomicAdd(count, 1ull);
  }
}

constexpr unsigned kGrid = 1024, kBlock = 256;

// A plain device buffer of `count` elements, its size rounded up to whole
// 32-bit words (the pad is never written by a layer and always reset alike).
// Zeroed, except a workspace (zero: false), so that initcheck still sees a
// layer read scratch it never wrote, and never blames the pad of a copy.
struct dbuf {
  std::string name;
  index_t count = 0;
  int elem = 0;
  std::uint32_t mask = 0;
  std::size_t bytes = 0;
  void* p = nullptr;
  dbuf(std::string n, index_t count_, int elem_, std::uint32_t mask_, bool zero = true)
      : name(std::move(n)), count(count_), elem(elem_), mask(mask_), bytes((std::size_t(count_) * elem_ + 3) / 4 * 4) {
    CUDA_REQUIRE(cudaMalloc(&p, bytes));
    if (zero) CUDA_REQUIRE(cudaMemset(p, 0, bytes));
  }
  ~dbuf() { cudaFree(p); }
  dbuf(const dbuf&) = delete;
  dbuf& operator=(const dbuf&) = delete;
  std::vector<unsigned char> download() const {
    std::vector<unsigned char> h(bytes);
    CUDA_REQUIRE(cudaMemcpy(h.data(), p, bytes, cudaMemcpyDeviceToHost));
    return h;
  }
};

// Forward (saving statistics), backward overwriting the gradients with
// statistics recomputed, and backward accumulating onto prior gradients from
// the saved statistics, of one layer on its own buffers.
class job {
 public:
  virtual ~job() = default;
  virtual std::string name() const = 0;
  // Enqueues on s: every output reset to 0xff bytes (NaN in every type), the
  // prior gradients copied in, then the three passes. Waits for nothing.
  virtual void enqueue(cudaStream_t s, bool caller_workspace) = 0;
  const std::vector<dbuf*>& outputs() const { return outputs_; }

 protected:
  std::vector<dbuf*> outputs_;
};

template <class T, class Layer>
class layer_job : public job {
 public:
  using info = layer_info<Layer>;
  template <class Make>
  layer_job(index_t rows, index_t cols, std::uint64_t salt, Make make) : rows_(rows), cols_(cols) {
    const index_t n = rows * cols;
    dbuf& x = add("x", n, false);
    dbuf& dy = add("dy", n, false);
    dbuf& alpha = add("alpha", 1, false);
    dbuf& gamma = add("gamma", cols, false);
    dbuf& beta = add("beta", cols, false);
    // x off centre, so LayerNorm's row means are nonzero.
    fill_uniform<T><<<kGrid, kBlock>>>(static_cast<T*>(x.p), n, salt, -2.5f, 3.0f);
    fill_uniform<T><<<kGrid, kBlock>>>(static_cast<T*>(dy.p), n, salt + 1, -1.0f, 1.0f);
    fill_uniform<T><<<1, 32>>>(static_cast<T*>(alpha.p), 1, salt + 2, 0.3f, 1.1f);
    fill_uniform<T><<<kGrid, kBlock>>>(static_cast<T*>(gamma.p), cols, salt + 3, 0.5f, 1.5f);
    fill_uniform<T><<<kGrid, kBlock>>>(static_cast<T*>(beta.p), cols, salt + 4, -0.25f, 0.25f);
    CUDA_REQUIRE(cudaGetLastError());
    x_ = static_cast<T*>(x.p);
    dy_ = static_cast<T*>(dy.p);
    layer_ = std::make_unique<Layer>(make(static_cast<const T*>(alpha.p), static_cast<const T*>(gamma.p),
                                          static_cast<const T*>(beta.p), cols));
    y_ = static_cast<T*>(add("y", n, true).p);
    if (info::saves_mean) mean_ = static_cast<float*>(add_float("mean", rows).p);
    if (info::saves_rstd) rstd_ = static_cast<float*>(add_float("rstd", rows).p);
    dx_over_ = static_cast<T*>(add("dx (overwrite pass)", n, true).p);
    dx_acc_ = static_cast<T*>(add("dx (accumulate pass)", n, true).p);
    for (int i = 0; i < 3; ++i) {
      if (!(info::grads & (1u << i))) continue;
      const index_t m = i == 2 ? 1 : cols;
      over_.p[i] = static_cast<T*>(add(bwd::kGradNames[i] + " (overwrite)", m, true).p);
      acc_.p[i] = static_cast<T*>(add(bwd::kGradNames[i] + " (accumulate)", m, true).p);
      prior_[i] = &add(bwd::kGradNames[i] + " prior", m, false);
      fill_uniform<T><<<kGrid, kBlock>>>(static_cast<T*>(prior_[i]->p), m, salt + 5 + std::uint64_t(i), -2.0f, 2.0f);
    }
    CUDA_REQUIRE(cudaGetLastError());
    const std::size_t ws = layer_->workspace_bytes(rows);
    if (ws) {
      ws_over_ = &add("workspace", index_t(ws), false, 1, false);
      ws_acc_ = &add("workspace", index_t(ws), false, 1, false);
    }
    CUDA_REQUIRE(cudaDeviceSynchronize());
  }

  std::string name() const override {
    return std::string(info::name) + " " + type_label<T>() + " " + std::to_string(rows_) + " x " + std::to_string(cols_);
  }

  void enqueue(cudaStream_t s, bool caller_workspace) override {
    for (dbuf* o : outputs_) CUDA_REQUIRE(cudaMemsetAsync(o->p, 0xff, o->bytes, s));
    for (int i = 0; i < 3; ++i)
      if (prior_[i]) CUDA_REQUIRE(cudaMemcpyAsync(acc_.p[i], prior_[i]->p, prior_[i]->bytes, cudaMemcpyDeviceToDevice, s));
    const dyt::rows_view<const T> x(x_, rows_, cols_), dy(dy_, rows_, cols_);
    dyt::status st = run_forward(*layer_, x, dyt::rows_view<T>(y_, rows_, cols_), mean_, rstd_, s);
    REQUIRE_MESSAGE(st.ok(), std::string(st.message()));
    auto ws = [&](const dbuf* b) {
      return caller_workspace && b ? dyt::device_workspace{b->p, b->bytes} : dyt::device_workspace{};
    };
    st = run_backward(*layer_, x, dy, dyt::rows_view<T>(dx_over_, rows_, cols_), over_, grad_mode::overwrite, nullptr,
                      nullptr, ws(ws_over_), s);
    REQUIRE_MESSAGE(st.ok(), std::string(st.message()));
    st = run_backward(*layer_, x, dy, dyt::rows_view<T>(dx_acc_, rows_, cols_), acc_, grad_mode::accumulate, mean_,
                      rstd_, ws(ws_acc_), s);
    REQUIRE_MESSAGE(st.ok(), std::string(st.message()));
  }

 private:
  dbuf& add(const std::string& what, index_t count, bool output, int elem = int(sizeof(T)), bool zero = true) {
    owned_.push_back(std::make_unique<dbuf>(what, count, elem, exponent_mask<T>(), zero));
    if (output) outputs_.push_back(owned_.back().get());
    return *owned_.back();
  }
  dbuf& add_float(const std::string& what, index_t count) {
    owned_.push_back(std::make_unique<dbuf>(what, count, 4, exponent_mask<float>()));
    outputs_.push_back(owned_.back().get());
    return *owned_.back();
  }

  index_t rows_, cols_;
  std::vector<std::unique_ptr<dbuf>> owned_;
  std::unique_ptr<Layer> layer_;
  T *x_ = nullptr, *dy_ = nullptr, *y_ = nullptr, *dx_over_ = nullptr, *dx_acc_ = nullptr;
  float *mean_ = nullptr, *rstd_ = nullptr;
  grad_set<T> over_, acc_;
  dbuf* prior_[3] = {nullptr, nullptr, nullptr};
  dbuf* ws_over_ = nullptr;
  dbuf* ws_acc_ = nullptr;
};

template <class T>
std::unique_ptr<job> make_job_as(int layer, index_t rows, index_t cols, std::uint64_t salt) {
  if (layer == 0)
    return std::make_unique<layer_job<T, dyt::DyT<T, dyt::cuda>>>(
        rows, cols, salt, [](const T* a, const T* g, const T* b, index_t n) { return dyt::DyT<T, dyt::cuda>(a, g, b, n); });
  if (layer == 1)
    return std::make_unique<layer_job<T, dyt::LayerNorm<T, dyt::cuda>>>(
        rows, cols, salt,
        [](const T*, const T* g, const T* b, index_t n) { return dyt::LayerNorm<T, dyt::cuda>(g, b, n, kLayerNormEps); });
  // Gemma's form on odd salts, so both forms run.
  const dyt::gamma_form form = salt % 2 ? dyt::gamma_form::one_plus : dyt::gamma_form::plain;
  return std::make_unique<layer_job<T, dyt::RMSNorm<T, dyt::cuda>>>(
      rows, cols, salt,
      [form](const T*, const T* g, const T*, index_t n) { return dyt::RMSNorm<T, dyt::cuda>(g, n, kRmsNormEps, form); });
}

std::unique_ptr<job> make_job(int type, int layer, index_t rows, index_t cols, std::uint64_t salt) {
  if (type == 0) return make_job_as<float>(layer, rows, cols, salt);
  if (type == 1) return make_job_as<bf16>(layer, rows, cols, salt);
  return make_job_as<__half>(layer, rows, cols, salt);
}

struct tensor_shape {
  index_t rows, cols;
};

// 4096 x 4096 and 50432 x 768: every SM busy with several teams, so the
// parameter gradients go through many slots; 2053 x 5003: the one-column loop
// engine (no 16-byte vectors at an odd width); 1031 x 16400: the vector loop
// engine (longer than any staged team holds).
std::vector<tensor_shape> determinism_shapes() {
  if (quick()) return {{129, 768}, {9, 1003}};
  return {{4096, 4096}, {50432, 768}, {2053, 5003}, {1031, 16400}};
}

}  // namespace

TEST_CASE("determinism: forward and both backward modes give the same bits run after run") {
  const int runs = quick() ? 3 : 100;
  for (const tensor_shape& shape : determinism_shapes())
    for (int type = 0; type < 3; ++type)
      for (int layer = 0; layer < 3; ++layer) {
        const std::unique_ptr<job> j = make_job(type, layer, shape.rows, shape.cols, std::uint64_t(17 + 3 * type + layer));
        INFO(j->name() << ", " << runs << " runs");
        const std::vector<dbuf*>& outs = j->outputs();
        std::vector<std::unique_ptr<dbuf>> first;
        for (const dbuf* o : outs) first.push_back(std::make_unique<dbuf>(o->name, o->count, o->elem, o->mask));
        // Per output: [differing words over all runs, Inf/NaN elements in run 0].
        dbuf counters("counters", index_t(2 * outs.size()), 8, 0);
        auto* counts = static_cast<unsigned long long*>(counters.p);
        CUDA_REQUIRE(cudaMemset(counters.p, 0, counters.bytes));
        for (int run = 0; run < runs; ++run) {
          // Odd runs pass the caller's workspaces: the bits must not depend on where it comes from.
          j->enqueue(nullptr, run % 2 == 1);
          for (std::size_t k = 0; k < outs.size(); ++k) {
            if (run == 0) {
              CUDA_REQUIRE(cudaMemcpyAsync(first[k]->p, outs[k]->p, outs[k]->bytes, cudaMemcpyDeviceToDevice, nullptr));
              count_nonfinite<<<kGrid, kBlock>>>(outs[k]->p, outs[k]->count, outs[k]->elem, outs[k]->mask,
                                                 counts + outs.size() + k);
            } else {
              count_differences<<<kGrid, kBlock>>>(static_cast<const std::uint32_t*>(outs[k]->p),
                                                   static_cast<const std::uint32_t*>(first[k]->p),
                                                   outs[k]->bytes / 4, counts + k);
            }
          }
          CUDA_REQUIRE(cudaGetLastError());
        }
        CUDA_REQUIRE(cudaDeviceSynchronize());
        std::vector<unsigned long long> host(2 * outs.size());
        CUDA_REQUIRE(cudaMemcpy(host.data(), counters.p, host.size() * 8, cudaMemcpyDeviceToHost));
        for (std::size_t k = 0; k < outs.size(); ++k) {
          CHECK_MESSAGE(host[k] == 0, outs[k]->name << ": " << host[k] << " words differ from the first run's");
          CHECK_MESSAGE(host[outs.size() + k] == 0,
                        outs[k]->name << ": " << host[outs.size() + k] << " element(s) Inf or NaN (never written?)");
        }
      }
}

TEST_CASE("streams: nine layer/type jobs on concurrent streams give the bits of each run alone on the default stream") {
  // Widths across the engines: one-warp and team staged rows, odd (loop) rows.
  const index_t widths[] = {768, 4096, 1003, 2048, 4097, 8192, 3072, 1536, 777};
  std::vector<std::unique_ptr<job>> jobs;
  for (int layer = 0; layer < 3; ++layer)
    for (int type = 0; type < 3; ++type) {
      const int k = 3 * layer + type;
      const index_t rows = quick() ? 24 + 5 * k : 1024 + 129 * k;
      jobs.push_back(make_job(type, layer, rows, widths[k], std::uint64_t(101 + k)));
    }
  // Alone, one after the other, on the legacy default stream.
  std::vector<std::vector<std::vector<unsigned char>>> alone;
  for (const auto& j : jobs) {
    j->enqueue(nullptr, false);
    CUDA_REQUIRE(cudaDeviceSynchronize());
    std::vector<std::vector<unsigned char>> outs;
    for (const dbuf* o : j->outputs()) outs.push_back(o->download());
    alone.push_back(std::move(outs));
  }
  std::vector<scoped_stream> streams(jobs.size());
  for (auto& s : streams) CUDA_REQUIRE(cudaStreamCreateWithFlags(&s.s, cudaStreamNonBlocking));
  const int reps = quick() ? 1 : 3;
  for (int caller_ws = 0; caller_ws < 2; ++caller_ws)
    for (int rep = 0; rep < reps; ++rep) {
      INFO((caller_ws ? "caller workspaces" : "cudaMallocAsync workspaces") << ", repetition " << rep);
      for (std::size_t k = 0; k < jobs.size(); ++k) jobs[k]->enqueue(streams[k].s, caller_ws == 1);
      CUDA_REQUIRE(cudaDeviceSynchronize());
      for (std::size_t k = 0; k < jobs.size(); ++k) {
        const std::vector<dbuf*>& outs = jobs[k]->outputs();
        for (std::size_t o = 0; o < outs.size(); ++o)
          CHECK_MESSAGE(outs[o]->download() == alone[k][o],
                        jobs[k]->name() << ", " << outs[o]->name << ": not the bits of the run alone");
      }
    }
}

// ============================================================================================
// 4. Edges, as the CPU layers behave (docs/numerics.md, tests/test_edges.cpp)
// ============================================================================================
namespace {

// A problem's inputs on the device, dense and aligned.
template <class T>
struct device_inputs {
  device_rows<T> x, dy, alpha, gamma, beta;
  explicit device_inputs(const problem<T>& p)
      : x(p.rows, p.cols, p.cols, 0),
        dy(p.rows, p.cols, p.cols, 0),
        alpha(1, 1, 1, 0),
        gamma(1, p.cols, p.cols, 0),
        beta(1, p.cols, p.cols, 0) {
    x.upload(p.x);
    dy.upload(p.dy);
    alpha.upload(p.alpha);
    gamma.upload(p.gamma);
    beta.upload(p.beta);
  }
};

template <class T>
struct forward_out {
  host_rows<T> y;
  host_rows<float> mean, rstd;
};

template <class T, class Layer>
forward_out<T> forward_once(const Layer& l, const device_rows<T>& x, index_t rows, index_t cols) {
  using info = layer_info<Layer>;
  device_rows<T> y(rows, cols, cols, 0);
  device_rows<float> mean(1, rows, rows, 0), rstd(1, rows, rows, 0);
  const dyt::status st = run_forward(l, x.cview(), y.view(), info::saves_mean ? mean.data() : nullptr,
                                     info::saves_rstd ? rstd.data() : nullptr, nullptr);
  REQUIRE_MESSAGE(st.ok(), std::string(st.message()));
  forward_out<T> out{y.fetch(), mean.fetch(), rstd.fetch()};
  CHECK(out.y.stray_writes() == 0);
  CHECK(out.mean.stray_writes() == 0);
  CHECK(out.rstd.stray_writes() == 0);
  return out;
}

template <class T>
struct backward_out {
  host_rows<T> dx;
  host_rows<T> grad[3];  // slots the layer lacks come back as canaries
};

// Backward, overwrite, statistics recomputed; every gradient the layer has.
template <class T, class Layer>
backward_out<T> backward_once(const Layer& l, const device_rows<T>& x, const device_rows<T>& dy, index_t rows,
                              index_t cols, unsigned grads) {
  device_rows<T> dx(rows, cols, cols, 0), g0(1, cols, cols, 0), g1(1, cols, cols, 0), g2(1, 1, 1, 0);
  grad_set<T> gs;
  gs.p[0] = grads & 1u ? g0.data() : nullptr;
  gs.p[1] = grads & 2u ? g1.data() : nullptr;
  gs.p[2] = grads & 4u ? g2.data() : nullptr;
  const dyt::status st =
      run_backward(l, x.cview(), dy.cview(), dx.view(), gs, grad_mode::overwrite, nullptr, nullptr, {}, nullptr);
  REQUIRE_MESSAGE(st.ok(), std::string(st.message()));
  backward_out<T> out{dx.fetch(), {g0.fetch(), g1.fetch(), g2.fetch()}};
  CHECK(out.dx.stray_writes() == 0);
  for (const auto& g : out.grad) CHECK(g.stray_writes() == 0);
  return out;
}

template <class U>
bool row_all(const host_rows<U>& h, index_t r, bool nan) {
  for (index_t c = 0; c < h.cols; ++c) {
    const double v = h.get(r, c);
    if (nan ? !std::isnan(v) : !std::isfinite(v)) return false;
  }
  return true;
}

template <class T>
bool finite_in(T v) {
  return std::isfinite(to_double(v));
}

std::vector<index_t> edge_cols() {
  if (quick()) return {3, 768, 4097};
  return {1, 3, 37, 768, 769, 4096, 4097, 8200};
}

// numerics.md's third documented limit: a row whose sigma is above 2^126 in
// float has a subnormal rstd, which is exact to within 2^-150 (half the
// subnormal spacing) instead of u relative. That is a relative 2^-150 / rstd
// more on rstd, and xh = (x s - mean s)(rstd / s) carries it to y, whose
// bound's scale covers |gamma xh|. Rows with a normal rstd are left as they are.
void allow_subnormal_rstd(fwd::forward_truth& t) {
  for (index_t r = 0; r < t.rstd.ref.cols; ++r) {
    const double rstd = t.rstd.ref(0, r);
    if (!(rstd > 0 && rstd < 0x1p-126)) continue;
    const double rel = 0x1p-150 / rstd;
    add_absolute(t.rstd, 0, r, rel * rstd);
    for (index_t c = 0; c < t.y.ref.cols; ++c) add_absolute(t.y, r, c, rel * t.y.scale(r, c));
  }
}

}  // namespace

TEST_CASE_TEMPLATE("edges: a LayerNorm row of equal values: exact mean, y = beta bit for bit, dgamma = 0", T, float,
                   bf16, __half) {
  const double values[] = {0.1, 100.1, 10000.3, -3.25, 0.0, 1e30, 7e-30};
  for (index_t cols : edge_cols()) {
    rng g(seed_for("sweep edges: equal LayerNorm rows", std::uint64_t(cols)));
    problem<T> p(layer_kind::layer_norm, 2, cols, dense_aligned, g);
    for (double v : values) {
      if (!finite_in(from_double<T>(v))) continue;  // 1e30 in half
      INFO(type_label<T>() << ", " << cols << " columns of " << v << " (row 0) and of " << -v << " (row 1)");
      for (index_t c = 0; c < cols; ++c) {
        p.x.set(0, c, v);
        p.x.set(1, c, -v);
      }
      p.xd = dense(p.x);
      device_inputs<T> d(p);
      const dyt::LayerNorm<T, dyt::cuda> layer(d.gamma.data(), d.beta.data(), cols, kLayerNormEps);
      const forward_out<T> f = forward_once(layer, d.x, 2, cols);
      // var = 0 exactly once the mean is: rstd = fl(1 / fl(sqrt(fl(eps)))),
      // eps's rounding to float halved by sqrt, sqrt and 1/ rounding: within
      // 2.5 u of 1 / sqrt(eps); 3 u with slack.
      const double want_rstd = 1 / std::sqrt(kLayerNormEps);
      for (index_t r = 0; r < 2; ++r) {
        CHECK(f.mean.get(0, r) == p.x.get(r, 0));
        CHECK(std::fabs(f.rstd.get(0, r) - want_rstd) <= 3 * 0x1p-24 * want_rstd);
        long not_beta = 0;
        for (index_t c = 0; c < cols; ++c) not_beta += !same_bits(f.y.at(r, c), p.beta.at(0, c));
        CHECK_MESSAGE(not_beta == 0, "row " << r << ": " << not_beta << " element(s) of y are not beta's bits");
      }
      // Backward: xh = 0, so the row adds exactly 0 to dgamma, and
      // dx = r (gh - mean(gh)) is computed as: gh = fl(dy gamma) (u |gh|), its
      // sum (n - 1) u and / n (u) on A = mean|gh|, the subtraction u (|gh| + A),
      // then times rstd (its 2.5 u above, and the product's u): within
      // (n + 5) u r (|gh| + A); k = n + 6 with a unit of slack, plus T's rounding.
      const backward_out<T> b = backward_once(layer, d.x, d.dy, 2, cols, 3u);
      using model = error_model<T, dyt::cuda>;
      error_check dx_check("dx of equal rows / " + type_label<T>());
      for (index_t r = 0; r < 2; ++r) {
        double mean_gh = 0, mean_abs_gh = 0;
        for (index_t c = 0; c < cols; ++c) {
          const double gh = p.dyd(r, c) * p.gammad(0, c);
          mean_gh += gh / double(cols);
          mean_abs_gh += std::fabs(gh) / double(cols);
        }
        for (index_t c = 0; c < cols; ++c) {
          const double gh = p.dyd(r, c) * p.gammad(0, c), want = want_rstd * (gh - mean_gh);
          const double got = b.dx.get(r, c);
          dx_check.add(r, c, got, want,
                       model::bound(got, want, double(cols) + 6, want_rstd * (std::fabs(gh) + mean_abs_gh)));
        }
      }
      long dgamma_nonzero = 0, dbeta_nonfinite = 0;
      for (index_t c = 0; c < cols; ++c) {
        dgamma_nonzero += b.grad[0].get(0, c) != 0.0;
        dbeta_nonfinite += !std::isfinite(b.grad[1].get(0, c));
      }
      CHECK_MESSAGE(dgamma_nonzero == 0, dgamma_nonzero << " dgamma element(s) not exactly 0");
      CHECK(dbeta_nonfinite == 0);
    }
  }
}

TEST_CASE_TEMPLATE("edges: RMSNorm of a row of equal values (eps = 0) is +-gain", T, float, bf16, __half) {
  for (index_t cols : edge_cols()) {
    rng g(seed_for("sweep edges: equal RMSNorm rows", std::uint64_t(cols)));
    problem<T> p(layer_kind::rms_norm, 1, cols, dense_aligned, g);
    for (double v : {3.0, -0.1, 1e30}) {
      if (!finite_in(from_double<T>(v))) continue;
      INFO(type_label<T>() << ", " << cols << " columns of " << v);
      for (index_t c = 0; c < cols; ++c) p.x.set(0, c, v);
      p.xd = dense(p.x);
      device_inputs<T> d(p);
      const dyt::RMSNorm<T, dyt::cuda> layer(d.gamma.data(), cols, 0.0);
      const forward_out<T> f = forward_once(layer, d.x, 1, cols);
      // x^2 (u), the sum (n - 1) u, / n (u): (n + 1) u; sqrt halves that and
      // rounds (u), 1 / rounds (u): rstd within (n/2 + 2.5) u of 1 / |x|; x rstd
      // and the gain's product round (2u): (n/2 + 4.5) u |gain|; k = n/2 + 5.5.
      using model = error_model<T, dyt::cuda>;
      error_check check("y of an equal RMSNorm row / " + type_label<T>());
      for (index_t c = 0; c < cols; ++c) {
        const double gain = p.gammad(0, c), want = std::copysign(1.0, p.xd(0, c)) * gain, got = f.y.get(0, c);
        check.add(0, c, got, want, model::bound(got, want, double(cols) / 2 + 5.5, std::fabs(gain)));
      }
    }
  }
}

namespace {

// centred_rescue_note: truth.hpp's LayerNorm bounds take the mean's error as
// n u mean|x| (the plain two-pass mean). A rescued row (ops/layer_norm.hpp,
// Robust) sums x - x0 instead, whose error bound (tests/test_edges.cpp) is
// (n + 2) u max(mean|x|, mean|x - x0| + |mean|): with a small x0, as the huge
// rows below have, that is within (n + 2) u (2 mean|x| + |x0|), at most about
// twice truth.hpp's term; the errors seen on the CPU for such rows are orders
// of magnitude inside either. So truth.hpp's bounds are used as they stand.
//
// LayerNorm and RMSNorm (forward with statistics; backward where asked) of p
// against truth.hpp's float64 truth, with the subnormal-rstd allowance.
template <class T>
void check_against_truth(const char* what, problem<T>& p, bool with_backward) {
  device_inputs<T> d(p);
  {
    INFO(what << ", LayerNorm");
    const dyt::LayerNorm<T, dyt::cuda> layer(d.gamma.data(), d.beta.data(), p.cols, kLayerNormEps);
    fwd::forward_truth ft = fwd::layer_norm_truth(p, fwd::kLnVariants[0]);
    allow_subnormal_rstd(ft);
    const forward_out<T> f = forward_once(layer, d.x, p.rows, p.cols);
    check_output<T>("y", f.y, ft.y);
    check_output<T>("mean", f.mean, ft.mean, false);
    check_output<T>("rstd", f.rstd, ft.rstd, false);
    if (with_backward) {
      const bwd::backward_truth bt = bwd::layer_norm_truth(p, bwd::kLnVariants[0]);
      const backward_out<T> b = backward_once(layer, d.x, d.dy, p.rows, p.cols, 3u);
      check_output<T>("dx", b.dx, bt.dx);
      check_output<T>("dgamma", b.grad[0], bt.grad[0]);
      check_output<T>("dbeta", b.grad[1], bt.grad[1]);
    }
  }
  {
    INFO(what << ", RMSNorm");
    const dyt::RMSNorm<T, dyt::cuda> layer(d.gamma.data(), p.cols, kRmsNormEps);
    fwd::forward_truth ft = fwd::rms_norm_truth(p, fwd::kRmsVariants[0]);
    allow_subnormal_rstd(ft);
    const forward_out<T> f = forward_once(layer, d.x, p.rows, p.cols);
    check_output<T>("y", f.y, ft.y);
    check_output<T>("rstd", f.rstd, ft.rstd, false);
    if (with_backward) {
      const bwd::backward_truth bt = bwd::rms_norm_truth(p, bwd::kRmsVariants[0]);
      const backward_out<T> b = backward_once(layer, d.x, d.dy, p.rows, p.cols, 1u);
      check_output<T>("dx", b.dx, bt.dx);
      check_output<T>("dgamma", b.grad[0], bt.grad[0]);
    }
  }
}

}  // namespace

TEST_CASE("edges: float rows of 4096 values up to 1e18 and up to FLT_MAX stay finite and within the bounds") {
  // The sums of squares overflow float (4096 values of 1e18 sum to ~1e39): the
  // CPU rescales such rows (ops/rescue.hpp); before that, y came out = beta.
  // 1e18: forward and backward. 3.4e38: forward only; sigma is above 2^126 there,
  // so rstd is subnormal (allowed for above) and dx would be too (numerics.md,
  // limit 4: subnormal results are exact only to their spacing).
  for (double v : {1e18, 3.4e38}) {
    INFO("|x| up to " << v);
    rng g(seed_for("sweep edges: huge float rows", std::uint64_t(v > 1e30)));
    problem<float> p(layer_kind::layer_norm, 3, 4096, dense_aligned, g);
    for (index_t r = 0; r < 3; ++r) {
      for (index_t c = 0; c < 4096; ++c) p.x.set(r, c, g.uniform(-1, 1) * v);
      p.x.set(r, 0, 0.5 - double(r));  // a small x0: see centred_rescue_note
    }
    p.xd = dense(p.x);
    check_against_truth("float rows", p, v < 1e30);
  }
}

TEST_CASE_TEMPLATE("edges: rows of bf16 and half values over the whole range, the largest included", T, bf16, __half) {
  // Random signs and exponents over all of T's finite range, and +-the largest
  // value in row 0 (as tests/test_edges.cpp's check_wild_rows), x0 = +-1: bf16 rows
  // overflow float's sums, half rows do not; both must be finite and right.
  const bool is_bf16 = dyt::format_of<T>::value == dyt::format::bf16;
  const int lo = is_bf16 ? -133 : -24, hi = is_bf16 ? 127 : 15;
  const index_t rows = 8, cols = quick() ? 300 : 769;
  rng g(seed_for("sweep edges: wild 16-bit rows"));
  problem<T> p(layer_kind::layer_norm, rows, cols, dense_aligned, g);
  for (index_t r = 0; r < rows; ++r)
    for (index_t c = 0; c < cols; ++c) {
      const double m = std::ldexp(g.uniform(1, 2), int(lo + below(g, hi - lo + 1)));
      p.x.set(r, c, g.chance(0.5) ? -m : m);
    }
  const double largest = is_bf16 ? 3.3895313892515355e38 : 65504.0;
  p.x.set(0, 1, largest);
  p.x.set(0, 2, -largest);
  for (index_t r = 0; r < rows; ++r) p.x.set(r, 0, r % 2 ? -1.0 : 1.0);  // a small x0: see centred_rescue_note
  p.xd = dense(p.x);
  for (index_t c = 0; c < cols; ++c) REQUIRE(std::isfinite(p.xd(0, c)));
  REQUIRE(std::fabs(p.xd(0, 1)) == largest);
  check_against_truth(is_bf16 ? "bf16 rows" : "half rows", p, true);
  // DyT saturates: finite for every finite input.
  device_inputs<T> d(p);
  const dyt::DyT<T, dyt::cuda> dyt_layer(d.alpha.data(), d.gamma.data(), d.beta.data(), cols);
  const forward_out<T> f = forward_once(dyt_layer, d.x, rows, cols);
  for (index_t r = 0; r < rows; ++r) CHECK(row_all(f.y, r, false));
}

TEST_CASE_TEMPLATE("edges: eps = 0: ordinary rows are right; a LayerNorm row of equal values and an RMSNorm row of "
                   "zeros are 0/0: NaN rows with rstd = +Inf",
                   T, float, bf16, __half) {
  for (index_t cols : edge_cols()) {
    if (cols < 3) continue;
    INFO(type_label<T>() << ", " << cols << " columns");
    rng g(seed_for("sweep edges: eps 0", std::uint64_t(cols)));
    problem<T> p(layer_kind::layer_norm, 3, cols, dense_aligned, g);
    for (index_t c = 0; c < cols; ++c) {
      p.x.set(1, c, 100.1);  // equal values
      p.x.set(2, c, 0.0);    // zeros
    }
    p.xd = dense(p.x);
    device_inputs<T> d(p);
    // Row 0 against the float64 reference with eps = 0, within truth.hpp's
    // bound for eps = 1e-5: the derivation counts eps's roundings, which eps = 0
    // only removes, and its scales move by eps / var (below 1e-5 relative
    // here, var >= 0.25 / 3), which its unit of slack covers.
    auto with_eps0_ref = [&](expected_output e, auto&& reference_forward) {
      dense ref(p.rows, p.cols);
      REQUIRE(reference_forward(ref).ok());
      for (index_t c = 0; c < cols; ++c) e.ref.v[std::size_t(c)] = ref(0, c);
      return e;
    };
    {
      const dyt::LayerNorm<T, dyt::cuda> ln(d.gamma.data(), d.beta.data(), cols, 0.0);
      const forward_out<T> f = forward_once(ln, d.x, 3, cols);
      const expected_output e =
          with_eps0_ref(fwd::layer_norm_truth(p, fwd::kLnVariants[0]).y, [&](dense& out) {
            return dyt::LayerNorm<double, dyt::reference>(p.gammad.data(), p.betad.data(), cols, 0.0)
                .forward(p.xd.cview(), out.view());
          });
      check_output<T>("LayerNorm y (eps = 0), ordinary row", f.y, e, true, 0, 1);
      CHECK(row_all(f.y, 1, true));
      CHECK(row_all(f.y, 2, true));
      CHECK(f.rstd.get(0, 1) == HUGE_VAL);
      CHECK(f.mean.get(0, 1) == p.x.get(1, 0));
      const backward_out<T> b = backward_once(ln, d.x, d.dy, 3, cols, 3u);
      CHECK(row_all(b.dx, 0, false));
      CHECK(row_all(b.dx, 1, true));
    }
    {
      const dyt::RMSNorm<T, dyt::cuda> rms(d.gamma.data(), cols, 0.0);
      const forward_out<T> f = forward_once(rms, d.x, 3, cols);
      const expected_output e =
          with_eps0_ref(fwd::rms_norm_truth(p, fwd::kRmsVariants[0]).y, [&](dense& out) {
            return dyt::RMSNorm<double, dyt::reference>(p.gammad.data(), cols, 0.0).forward(p.xd.cview(), out.view());
          });
      check_output<T>("RMSNorm y (eps = 0), ordinary row", f.y, e, true, 0, 1);
      CHECK(row_all(f.y, 1, false));
      CHECK(row_all(f.y, 2, true));
      CHECK(f.rstd.get(0, 2) == HUGE_VAL);
      const backward_out<T> b = backward_once(rms, d.x, d.dy, 3, cols, 1u);
      CHECK(row_all(b.dx, 0, false));
      CHECK(row_all(b.dx, 2, true));
    }
  }
}

TEST_CASE_TEMPLATE("edges: DyT with alpha = 0: y = beta, dx = 0, dgamma = 0, dbeta and dalpha right", T, float, bf16,
                   __half) {
  for (index_t cols : edge_cols()) {
    INFO(type_label<T>() << ", " << cols << " columns");
    rng g(seed_for("sweep edges: alpha 0", std::uint64_t(cols)));
    problem<T> p(layer_kind::dyt, 4, cols, dense_aligned, g);
    p.alpha.set(0, 0, 0.0);
    p.alphad = 0;
    device_inputs<T> d(p);
    const dyt::DyT<T, dyt::cuda> layer(d.alpha.data(), d.gamma.data(), d.beta.data(), cols);
    const forward_out<T> f = forward_once(layer, d.x, 4, cols);
    long not_beta = 0;
    for (index_t r = 0; r < 4; ++r)
      for (index_t c = 0; c < cols; ++c) not_beta += f.y.get(r, c) != p.betad(0, c);
    CHECK_MESSAGE(not_beta == 0, not_beta << " element(s) of y differ from beta");
    const dyt::DyT<T, dyt::cuda> no_beta(d.alpha.data(), d.gamma.data(), nullptr, cols);
    const forward_out<T> f0 = forward_once(no_beta, d.x, 4, cols);
    for (index_t r = 0; r < 4; ++r)
      for (index_t c = 0; c < cols; ++c) CHECK(f0.y.get(r, c) == 0.0);

    const backward_out<T> b = backward_once(layer, d.x, d.dy, 4, cols, 7u);
    long dx_nonzero = 0, dgamma_nonzero = 0;
    for (index_t r = 0; r < 4; ++r)
      for (index_t c = 0; c < cols; ++c) dx_nonzero += b.dx.get(r, c) != 0.0;
    for (index_t c = 0; c < cols; ++c) dgamma_nonzero += b.grad[0].get(0, c) != 0.0;
    CHECK_MESSAGE(dx_nonzero == 0, dx_nonzero << " element(s) of dx not 0");
    CHECK_MESSAGE(dgamma_nonzero == 0, dgamma_nonzero << " element(s) of dgamma not 0");
    const bwd::backward_truth bt =
        backward_truth_for(layer, p, param_choice{true, true, false});  // dbeta = sum dy, dalpha = sum x dy gamma
    check_output<T>("dbeta (alpha = 0)", b.grad[1], bt.grad[1]);
    check_output<T>("dalpha (alpha = 0)", b.grad[2], bt.grad[2]);
  }
}

namespace {

// y(-a, x) and y(a, -x) multiply the same magnitudes: same t, y, dgamma and
// dbeta bits; dx = alpha g and dalpha = sum x g change sign exactly. Without
// beta y(-a, x) = -y(a, x) needs tanh to be odd, as the CPU's policies are.
template <class T, class Tanh>
void check_negative_alpha(index_t cols) {
  rng g(seed_for("sweep edges: negative alpha", std::uint64_t(cols)));
  problem<T> p(layer_kind::dyt, 4, cols, dense_aligned, g);
  problem<T> q = p;  // q.x = -p.x (negation is exact in every type)
  for (index_t r = 0; r < 4; ++r)
    for (index_t c = 0; c < cols; ++c) q.x.set(r, c, -p.x.get(r, c));
  device_inputs<T> dp(p), dq(q);
  guarded<T> neg_alpha(1, 1);
  neg_alpha.set(0, 0, -p.alpha.get(0, 0));
  device_rows<T> minus_alpha(1, 1, 1, 0);
  minus_alpha.upload(neg_alpha);
  using layer_t = dyt::DyT<T, dyt::cuda, Tanh>;
  const layer_t a(minus_alpha.data(), dp.gamma.data(), dp.beta.data(), cols);  // -alpha on x
  const layer_t b(dp.alpha.data(), dp.gamma.data(), dp.beta.data(), cols);     // alpha on -x
  const forward_out<T> ya = forward_once(a, dp.x, 4, cols), yb = forward_once(b, dq.x, 4, cols);
  long differ = 0;
  for (index_t r = 0; r < 4; ++r)
    for (index_t c = 0; c < cols; ++c) differ += !same_bits(ya.y.at(r, c), yb.y.at(r, c));
  CHECK_MESSAGE(differ == 0, "y(-a, x) vs y(a, -x): " << differ << " element(s) differ");
  const backward_out<T> ga = backward_once(a, dp.x, dp.dy, 4, cols, 7u), gb = backward_once(b, dq.x, dp.dy, 4, cols, 7u);
  long dx_bad = 0, grads_bad = 0;
  for (index_t r = 0; r < 4; ++r)
    for (index_t c = 0; c < cols; ++c) dx_bad += ga.dx.get(r, c) != -gb.dx.get(r, c);
  for (index_t c = 0; c < cols; ++c)
    grads_bad += !same_bits(ga.grad[0].at(0, c), gb.grad[0].at(0, c)) + !same_bits(ga.grad[1].at(0, c), gb.grad[1].at(0, c));
  CHECK_MESSAGE(dx_bad == 0, "dx(-a, x) vs -dx(a, -x): " << dx_bad << " element(s) differ");
  CHECK_MESSAGE(grads_bad == 0, "dgamma, dbeta of (-a, x) vs (a, -x): " << grads_bad << " element(s) differ");
  CHECK(ga.grad[2].get(0, 0) == -gb.grad[2].get(0, 0));
  const layer_t a0(minus_alpha.data(), dp.gamma.data(), nullptr, cols), b0(dp.alpha.data(), dp.gamma.data(), nullptr, cols);
  const forward_out<T> za = forward_once(a0, dp.x, 4, cols), zb = forward_once(b0, dp.x, 4, cols);
  long not_odd = 0;
  for (index_t r = 0; r < 4; ++r)
    for (index_t c = 0; c < cols; ++c) not_odd += za.y.get(r, c) != -zb.y.get(r, c);
  CHECK_MESSAGE(not_odd == 0, "without beta, y(-a, x) vs -y(a, x): " << not_odd << " element(s) differ");
}

}  // namespace

TEST_CASE_TEMPLATE("edges: DyT with negative alpha: y(-a, x) = y(a, -x) bit for bit; without beta y(-a, x) = -y(a, x)",
                   T, float, bf16, __half) {
  for (index_t cols : edge_cols()) {
    INFO(type_label<T>() << ", " << cols << " columns, default tanh policy");
    check_negative_alpha<T, dyt::default_tanh_t<T>>(cols);
  }
  if (std::is_same<T, float>::value)
    for (index_t cols : edge_cols()) {
      INFO("float, " << cols << " columns, tanh_fast (tanh.approx.f32)");
      check_negative_alpha<float, dyt::tanh_fast>(cols);
    }
}

TEST_CASE_TEMPLATE("edges: a NaN in x or dy: which outputs and gradients turn NaN", T, float, bf16, __half) {
  for (index_t cols : edge_cols()) {
    if (cols < 3) continue;
    const index_t body = cols / 3, tail = cols - 1;
    auto bad_elem = [&](index_t r, index_t c) { return (r == 1 && c == body) || (r == 3 && c == tail); };
    auto bad_col = [&](index_t c) { return c == body || c == tail; };
    rng g(seed_for("sweep edges: NaN", std::uint64_t(cols)));
    problem<T> p(layer_kind::layer_norm, 4, cols, dense_aligned, g);
    for (int where = 0; where < 2; ++where) {
      const bool in_x = where == 0;
      INFO(type_label<T>() << ", " << cols << " columns, NaN in " << (in_x ? "x" : "dy"));
      problem<T> q = p;
      guarded<T>& target = in_x ? q.x : q.dy;
      target.set(1, body, std::nan(""));
      target.set(3, tail, std::nan(""));
      device_inputs<T> d(q);
      {  // DyT: y and dx at the element; dgamma at its column; dbeta at its column for dy only; dalpha NaN.
        const dyt::DyT<T, dyt::cuda> layer(d.alpha.data(), d.gamma.data(), d.beta.data(), cols);
        if (in_x) {
          const forward_out<T> f = forward_once(layer, d.x, 4, cols);
          long wrong = 0;
          for (index_t r = 0; r < 4; ++r)
            for (index_t c = 0; c < cols; ++c) wrong += std::isnan(f.y.get(r, c)) != bad_elem(r, c);
          CHECK_MESSAGE(wrong == 0, "DyT y: " << wrong << " element(s) NaN where they should not be or not where they should");
        }
        const backward_out<T> b = backward_once(layer, d.x, d.dy, 4, cols, 7u);
        long wrong = 0;
        for (index_t r = 0; r < 4; ++r)
          for (index_t c = 0; c < cols; ++c) wrong += std::isnan(b.dx.get(r, c)) != bad_elem(r, c);
        CHECK_MESSAGE(wrong == 0, "DyT dx: " << wrong << " element(s) wrong");
        long gwrong = 0;
        for (index_t c = 0; c < cols; ++c)
          gwrong += (std::isnan(b.grad[0].get(0, c)) != bad_col(c)) + (std::isnan(b.grad[1].get(0, c)) != (!in_x && bad_col(c)));
        CHECK_MESSAGE(gwrong == 0, "DyT dgamma/dbeta: " << gwrong << " element(s) wrong");
        CHECK(std::isnan(b.grad[2].get(0, 0)));
      }
      {  // LayerNorm: the row of y, mean, rstd, dx; dgamma everywhere for x, at its column for dy; dbeta for dy.
        const dyt::LayerNorm<T, dyt::cuda> layer(d.gamma.data(), d.beta.data(), cols, kLayerNormEps);
        if (in_x) {
          const forward_out<T> f = forward_once(layer, d.x, 4, cols);
          for (index_t r = 0; r < 4; ++r) {
            const bool bad = r == 1 || r == 3;
            CHECK(row_all(f.y, r, bad));
            CHECK(std::isnan(f.mean.get(0, r)) == bad);
            CHECK(std::isnan(f.rstd.get(0, r)) == bad);
          }
        }
        const backward_out<T> b = backward_once(layer, d.x, d.dy, 4, cols, 3u);
        for (index_t r = 0; r < 4; ++r) CHECK(row_all(b.dx, r, r == 1 || r == 3));
        long gwrong = 0;
        for (index_t c = 0; c < cols; ++c)
          gwrong += (std::isnan(b.grad[0].get(0, c)) != (in_x || bad_col(c))) +
                    (std::isnan(b.grad[1].get(0, c)) != (!in_x && bad_col(c)));
        CHECK_MESSAGE(gwrong == 0, "LayerNorm dgamma/dbeta: " << gwrong << " element(s) wrong");
      }
      {  // RMSNorm: as LayerNorm, without mean and dbeta.
        const dyt::RMSNorm<T, dyt::cuda> layer(d.gamma.data(), cols, kRmsNormEps);
        if (in_x) {
          const forward_out<T> f = forward_once(layer, d.x, 4, cols);
          for (index_t r = 0; r < 4; ++r) {
            const bool bad = r == 1 || r == 3;
            CHECK(row_all(f.y, r, bad));
            CHECK(std::isnan(f.rstd.get(0, r)) == bad);
          }
        }
        const backward_out<T> b = backward_once(layer, d.x, d.dy, 4, cols, 1u);
        for (index_t r = 0; r < 4; ++r) CHECK(row_all(b.dx, r, r == 1 || r == 3));
        long gwrong = 0;
        for (index_t c = 0; c < cols; ++c) gwrong += std::isnan(b.grad[0].get(0, c)) != (in_x || bad_col(c));
        CHECK_MESSAGE(gwrong == 0, "RMSNorm dgamma: " << gwrong << " element(s) wrong");
      }
    }
  }
}
