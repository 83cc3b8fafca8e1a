// fuzz/driver.hpp: one libFuzzer case for DyT, Derf, DyISRU, LayerNorm or RMSNorm.
//
// The input bytes choose the storage type, the pass (forward, forward saving
// statistics, backward, backward from saved statistics, the chunk API and
// reduce_gradients; each plain or with the fused residual add:
// forward_residual, backward_residual, backward_chunks_residual; or the
// quantized forward, forward_quantized with a per-row or per-channel scale,
// after static_scales() or with the caller's, int8 or E4M3), the shape, row strides and base misalignments, aliasing
// (in place, interleaved rows, partial overlaps), which parameters and
// gradients are given, grad_mode, eps, alpha, an optional injected argument
// error, and the values (a seeded draw from one of several distributions per
// tensor, plus injected NaNs, infinities, signed zeros, subnormals, extremes).
// The layout of the bytes is in decode() below; fuzz/make_corpus.py writes
// seeds in it.
//
// Every call runs on dyt::cpu and dyt::cpu_scalar, each on its own copy of an
// arena holding every buffer behind guards (fuzz_support.hpp), and is checked:
//  (a) its status is what the documented argument rules predict (predict()),
//      and a refused call changed no byte of the arena;
//  (b) an accepted call changed no byte outside its output views and arrays
//      (ASan reports any access outside the memory it was given at once), and
//      its outputs match the float64 dyt::reference backend within the bounds
//      the tests derive (tests/test_forward.cpp, tests/test_backward.cpp;
//      restated in truth_*() below) where the inputs are in the range those
//      derivations assume; outside it, a finite output must still be within
//      the bound (plus an allowance for subnormal rounding), and a non-finite
//      one is only allowed where the reference's is, or where an intermediate
//      provably overflows the compute type (documented in docs/numerics.md);
//  (c) cpu and cpu_scalar agree within the sum of their bounds and have NaNs
//      in the same places; and the documented bit-identities hold: saving
//      statistics leaves y unchanged, in place equals out of place, backward
//      from saved statistics equals recomputing them, asking for fewer
//      gradients changes none of the others, the chunk API with the default
//      plan equals backward(), and grad_mode::accumulate adds exactly; the
//      fused residual add leaves h = fl(x + residual) exactly (one rounding to
//      T) and y = forward(h) bit for bit, and its backward's gradients are
//      backward()'s bits;
//  (d) a quantized pass's codes and scales keep the special-value rules of
//      ops/quantize.hpp, dequantize to within the documented bound of the
//      float64 truth, never clip with static_scales()' scales, and are bit for
//      bit the documented quantization of forward()'s y for float and double
//      (harness.hpp, check_quantized).
#pragma once

#include "fuzz_support.hpp"

namespace fz {

enum class layer_kind { dyt, layer_norm, rms_norm, derf, dyisru };

// DyT, Derf and DyISRU: one point-wise layer (layers/pointwise.hpp), no statistics.
template <layer_kind K>
constexpr bool pointwise = K == layer_kind::dyt || K == layer_kind::derf || K == layer_kind::dyisru;

inline const char* kind_name(layer_kind k) {
  switch (k) {
    case layer_kind::dyt: return "DyT";
    case layer_kind::layer_norm: return "LayerNorm";
    case layer_kind::rms_norm: return "RMSNorm";
    case layer_kind::derf: return "Derf";
    case layer_kind::dyisru: return "DyISRU";
  }
  return "?";
}
enum class pass_kind { forward, forward_stats, backward, backward_saved, chunks };

inline const char* pass_name(pass_kind p) {
  switch (p) {
    case pass_kind::forward: return "forward";
    case pass_kind::forward_stats: return "forward+stats";
    case pass_kind::backward: return "backward";
    case pass_kind::backward_saved: return "backward(saved stats)";
    case pass_kind::chunks: return "backward_chunks+reduce_gradients";
  }
  return "?";
}

// Parameters and their gradients, by index (shift: Derf's only).
enum { P_ALPHA = 0, P_GAMMA = 1, P_BETA = 2, P_SHIFT = 3, kParams = 4 };
static const char* const kParamNames[kParams] = {"alpha", "gamma", "beta", "shift"};
static const char* const kGradNames[kParams] = {"dalpha", "dgamma", "dbeta", "dshift"};
// alpha and shift are one value each, gamma and beta one per column.
constexpr bool scalar_param(int i) { return i == P_ALPHA || i == P_SHIFT; }

// A view inside the arena: `off` elements into slot `slot`.
struct view_cfg {
  int slot = -1;
  index_t off = 0, rows = 0, cols = 0, stride = 0;
  bool null = false;
};
// An array inside the arena (parameters, gradients, statistics); absent: null pointer.
struct array_cfg {
  int slot = -1;
  index_t off = 0, n = 0;
  bool present = false;
};

enum inject_kind {
  inj_none = 0,
  inj_x_null, inj_out_null, inj_dy_null, inj_x_rows0, inj_x_rows_neg, inj_x_cols0, inj_x_stride_small,
  inj_out_rows, inj_out_cols, inj_layer_cols_more, inj_layer_cols0, inj_layer_cols_neg, inj_eps_nan,
  inj_eps_neg, inj_eps_inf, inj_param_null, inj_grad_without_param, inj_stats_half, inj_ws_small,
  inj_ws_misaligned, inj_ws_null, inj_plan_rows, inj_plan_chunks0, inj_plan_chunks_more, inj_range_reversed,
  inj_range_past, inj_huge_rows, inj_huge_stride, inj_huge_cols, inj_dy_shape, inj_eps_neg_zero,
  // residual passes (residual / dh) and Derf's shift
  inj_shift_null, inj_res_null, inj_res_rows, inj_res_cols, inj_res_stride_small,
  // quantized output (codes and scales; no-ops in the other passes)
  inj_codes_null, inj_codes_rows, inj_codes_cols, inj_codes_stride_small, inj_scale_null, inj_scale_over_x,
  inj_scale_over_param, inj_scale_over_codes, inj_scale_over_stats,
  inj_count
};

// The quantized-output passes (byte 1 bit 4): forward_quantized with a
// per-row scale (every layer; the norms also saving statistics), or with a
// per-channel scale (the point-wise layers): the caller's, or static_scales()'
// (called first, into the same array).
enum class scale_kind { per_row, per_channel, from_static_scales };

struct quant_cfg {
  bool on = false;
  bool e4m3 = false;  // else int8
  scale_kind scale = scale_kind::per_row;
  view_cfg codes;     // `off` and `stride` in bytes (one byte a code)
  // The scale array: n values of the compute type at byte `byte_off` of slot `slot`.
  int slot = -1;
  std::size_t byte_off = 0;
  index_t n = 0;
  bool null = false;
  bool own = true;  // in its own slot (else over another buffer: an injected overlap)
};

inline const char* scale_kind_name(scale_kind k) {
  switch (k) {
    case scale_kind::per_row: return "per-row scale";
    case scale_kind::per_channel: return "caller's per-channel scale";
    case scale_kind::from_static_scales: return "static_scales() then per-channel scale";
  }
  return "?";
}

struct case_cfg {
  layer_kind kind = layer_kind::dyt;
  int type = 0;  // 0 float, 1 double, 2 bfloat16, 3 half
  bool alt_policy = false;
  pass_kind pass = pass_kind::forward;
  index_t rows = 1, cols = 1, layer_cols = 1;
  bool residual = false;  // the fused residual variant of the pass
  int res_alias = 0;      // where residual (forward) or dh (backward) lies: decode()
  bool has[kParams] = {true, true, true, false};
  bool want[kParams] = {false, false, false, false};
  bool accumulate = false, one_plus = false;
  double eps = 1e-5;
  int alias = 0;
  view_cfg x, y, dy, dx;
  view_cfg r;  // the residual (forward, read and written) or dh (backward)
  array_cfg param[kParams], grad[kParams], mean, rstd;
  bool saved_arbitrary = false;
  int ws_slot = -1;
  std::size_t ws_off = 0, ws_size = 0;
  bool ws_null = false;
  index_t plan_rows = 0, plan_chunks = 0;
  std::vector<std::pair<index_t, index_t>> ranges;
  int inject = 0;
  std::uint8_t dist[6] = {};  // x, dy, gamma, beta, residual or dh, prior gradients
  int specials = 0;
  quant_cfg q;

  bool backward() const { return pass >= pass_kind::backward; }
  std::string describe(const char* type_name) const {
    char buf[768];
    std::snprintf(buf, sizeof buf,
                  "%s<%s>%s %s%s: %lld x %lld (layer cols %lld), strides x %lld y %lld dy %lld dx %lld %s %lld, "
                  "offsets x %lld y %lld dy %lld dx %lld %s %lld, alias %d/%d, params %d%d%d%d%s, grads %d%d%d%d %s, "
                  "eps %.17g, stats m%d r%d%s, "
                  "plan %lld/%lld (%zu ranges), workspace %zu bytes +%zu%s, inject %d, dists %d %d %d %d %d %d, "
                  "%d specials",
                  kind_name(kind), type_name, alt_policy ? " (other tanh policy)" : "", pass_name(pass),
                  residual ? " (residual)" : "", (long long)rows, (long long)cols, (long long)layer_cols,
                  (long long)x.stride, (long long)y.stride, (long long)dy.stride, (long long)dx.stride,
                  backward() ? "dh" : "residual", (long long)r.stride, (long long)x.off, (long long)y.off,
                  (long long)dy.off, (long long)dx.off, backward() ? "dh" : "residual", (long long)r.off, alias,
                  res_alias, has[0], has[1], has[2], has[3], one_plus ? " one_plus" : "", want[0], want[1], want[2],
                  want[3], accumulate ? "accumulate" : "overwrite", eps, mean.present, rstd.present,
                  saved_arbitrary ? " arbitrary" : "", (long long)plan_rows, (long long)plan_chunks, ranges.size(),
                  ws_size, ws_off, ws_null ? " null" : "", inject, dist[0], dist[1], dist[2], dist[3], dist[4],
                  dist[5], specials);
    std::string out = buf;
    if (q.on) {
      std::snprintf(buf, sizeof buf,
                    "; QUANTIZED %s, %s: codes %lld x %lld stride %lld at byte %lld of slot %d%s, scales %lld at "
                    "byte %zu of slot %d%s%s",
                    q.e4m3 ? "e4m3" : "int8", scale_kind_name(q.scale), (long long)q.codes.rows,
                    (long long)q.codes.cols, (long long)q.codes.stride, (long long)q.codes.off, q.codes.slot,
                    q.codes.null ? " null" : "", (long long)q.n, q.byte_off, q.slot, q.null ? " null" : "",
                    q.own ? "" : " (over another buffer)");
      out += buf;
    }
    return out;
  }
};

template <class C>
constexpr double unit_roundoff() {
  return std::is_same<C, double>::value ? 0x1p-53 : 0x1p-24;
}
// The spacing of the compute type's subnormals: the largest error of a rounding that underflows.
template <class C>
constexpr double subnormal_spacing() {
  return std::is_same<C, double>::value ? 0x1p-1074 : 0x1p-149;
}
template <class C>
constexpr double compute_max() {
  return double(std::numeric_limits<C>::max());
}

// ---- Predicting the status ----------------------------------------------------------
// The argument rules of detail/checks.hpp and layers/layer_base.hpp, restated
// from their documentation: every rule a call breaks adds its code; an empty
// set means the call must be accepted. The overlap rule is evaluated
// independently of the library's code: exact (element by element) for views
// of one element type and stride, address ranges otherwise.

struct region {
  std::uintptr_t base = 0;
  index_t rows = 0, cols = 0, stride = 0;
  std::size_t elem = 0;
  bool output = false, view = false;

  std::uintptr_t end() const { return base + std::uintptr_t(((rows - 1) * stride + cols) * index_t(elem)); }
};

inline bool ranges_intersect(const region& a, const region& b) { return a.base < b.end() && b.base < a.end(); }

// floor(p / q) and ceil(p / q) for q > 0, in 128 bits (no overflow for any 64-bit operands).
inline __int128 floor_div(__int128 p, __int128 q) { return p >= 0 ? p / q : -((-p + q - 1) / q); }
inline __int128 ceil_div(__int128 p, __int128 q) { return -floor_div(-p, q); }

// Whether any byte of a is a byte of b. Views of one element size and stride,
// d elements apart: rows r of a and r' of b share an element iff some
// k = r - r' in [-(rows_b - 1), rows_a - 1] has k s - d in [-(cols_a - 1), cols_b - 1],
// i.e. k in [ceil((d - cols_a + 1) / s), floor((d + cols_b - 1) / s)]: a closed
// form, exact for any row count (the injected errors make views of 2^61 rows).
// Otherwise rows are enumerated (small: accepted calls only have sane views).
inline bool bytes_overlap(const region& a, const region& b) {
  if (!ranges_intersect(a, b)) return false;
  const std::intptr_t delta = std::intptr_t(b.base - a.base);
  if (a.elem == b.elem && a.stride == b.stride && delta % std::intptr_t(a.elem) == 0) {
    const __int128 s = a.stride, d = delta / std::intptr_t(a.elem);
    const __int128 lo = std::max<__int128>(ceil_div(d - (a.cols - 1), s), -(__int128(b.rows) - 1));
    const __int128 hi = std::min<__int128>(floor_div(d + (b.cols - 1), s), __int128(a.rows) - 1);
    return lo <= hi;
  }
  if (double(a.rows) * double(b.rows) > 1e7) return true;  // unreachable for accepted calls; conservative
  for (index_t i = 0; i < a.rows; ++i) {
    const std::uintptr_t a0 = a.base + std::uintptr_t(i * a.stride * index_t(a.elem)), a1 = a0 + std::uintptr_t(a.cols * index_t(a.elem));
    for (index_t k = 0; k < b.rows; ++k) {
      const std::uintptr_t b0 = b.base + std::uintptr_t(k * b.stride * index_t(b.elem)),
                           b1 = b0 + std::uintptr_t(b.cols * index_t(b.elem));
      if (a0 < b1 && b0 < a1) return true;
    }
  }
  return false;
}

inline bool same_view(const region& a, const region& b) {
  return a.base == b.base && a.rows == b.rows && a.cols == b.cols && a.stride == b.stride && a.elem == b.elem;
}

// The documented rule: exact for views of one element type and one stride, conservative otherwise.
inline bool documented_overlap(const region& a, const region& b) {
  if (!ranges_intersect(a, b)) return false;
  const bool alike = a.elem == b.elem && a.stride == b.stride && (a.rows > 1 || b.rows > 1);
  const std::intptr_t delta = std::intptr_t(b.base - a.base);
  if (!alike || delta % std::intptr_t(a.elem) != 0) return true;
  return bytes_overlap(a, b);
}

class predictor {
 public:
  void add(dyt::errc code) { codes_ |= 1u << unsigned(code); }
  bool ok() const { return codes_ == 0; }
  bool allows(dyt::errc code) const { return (codes_ >> unsigned(code)) & 1u; }
  unsigned codes() const { return codes_; }

  template <class U>
  void view(const dyt::rows_view<U>& v) {
    if (!v.data) return add(dyt::errc::null_pointer);
    if (v.rows < 1 || v.cols < 1) return add(dyt::errc::bad_size);
    if (v.row_stride < v.cols) return add(dyt::errc::bad_stride);
    const index_t max_elems = PTRDIFF_MAX / index_t(sizeof(U));
    if (v.cols > max_elems || v.rows - 1 > (max_elems - v.cols) / v.row_stride) add(dyt::errc::bad_size);
  }
  template <class U>
  void add_view(const dyt::rows_view<U>& v, bool output) {
    if (v.data) regions_.push_back({std::uintptr_t(v.data), v.rows, v.cols, v.row_stride, sizeof(U), output, true});
  }
  template <class U>
  void add_array(U* p, index_t n, bool output) {
    if (p) regions_.push_back({std::uintptr_t(p), 1, n, n, sizeof(U), output, false});
  }
  void check_overlap() {
    if (!ok()) return;  // the library checks overlaps last, on well-formed views only
    for (std::size_t i = 0; i < regions_.size(); ++i) {
      const region& out = regions_[i];
      if (!out.output) continue;
      for (std::size_t k = 0; k < regions_.size(); ++k) {
        const region& other = regions_[k];
        if (k == i || (other.output && k < i)) continue;
        if (out.view && other.view && !other.output && same_view(out, other)) continue;
        if (documented_overlap(out, other)) {
          overlap_ = true;
          return add(dyt::errc::overlap);
        }
      }
    }
  }
  // For an accepted call: no output shares a byte with another region, exact aliases aside.
  bool truly_disjoint() const {
    for (std::size_t i = 0; i < regions_.size(); ++i)
      for (std::size_t k = 0; k < regions_.size(); ++k) {
        const region &a = regions_[i], &b = regions_[k];
        if (i == k || !a.output) continue;
        if (a.view && b.view && !b.output && same_view(a, b)) continue;
        if (bytes_overlap(a, b)) return false;
      }
    return true;
  }

 private:
  unsigned codes_ = 0;
  bool overlap_ = false;
  std::vector<region> regions_;
};

// ---- The pointers of one case in one arena --------------------------------------------

template <class T, class C>
struct bound_case {
  dyt::rows_view<T> x, y, dy, dx, r;
  T* param[kParams] = {nullptr, nullptr, nullptr, nullptr};
  T* grad[kParams] = {nullptr, nullptr, nullptr, nullptr};
  C* mean = nullptr;
  C* rstd = nullptr;
  void* ws = nullptr;
  // Quantized output: the codes (as bytes) and the scale array.
  dyt::rows_view<std::uint8_t> codes;
  C* scales = nullptr;

  template <class Q>
  dyt::rows_view<Q> codes_as() const {
    return {reinterpret_cast<Q*>(codes.data), codes.rows, codes.cols, codes.row_stride};
  }

  bound_case(const case_cfg& c, const arena& a) {
    auto view = [&](const view_cfg& v) {
      T* p = v.slot >= 0 && !v.null ? reinterpret_cast<T*>(a.slot_ptr(v.slot)) + v.off : nullptr;
      return dyt::rows_view<T>(p, v.rows, v.cols, v.stride);
    };
    x = view(c.x);
    y = view(c.y);
    dy = view(c.dy);
    dx = view(c.dx);
    r = view(c.r);
    for (int i = 0; i < kParams; ++i) {
      if (c.param[i].present) param[i] = reinterpret_cast<T*>(a.slot_ptr(c.param[i].slot)) + c.param[i].off;
      if (c.grad[i].present) grad[i] = reinterpret_cast<T*>(a.slot_ptr(c.grad[i].slot)) + c.grad[i].off;
    }
    if (c.mean.present) mean = reinterpret_cast<C*>(a.slot_ptr(c.mean.slot)) + c.mean.off;
    if (c.rstd.present) rstd = reinterpret_cast<C*>(a.slot_ptr(c.rstd.slot)) + c.rstd.off;
    if (c.ws_slot >= 0 && !c.ws_null) ws = a.slot_ptr(c.ws_slot) + c.ws_off;
    if (c.q.on) {
      const view_cfg& v = c.q.codes;
      codes = {v.slot >= 0 && !v.null ? a.slot_ptr(v.slot) + v.off : nullptr, v.rows, v.cols, v.stride};
      if (c.q.slot >= 0 && !c.q.null) scales = reinterpret_cast<C*>(a.slot_ptr(c.q.slot) + c.q.byte_off);
    }
  }
};

// ---- Layers ----------------------------------------------------------------------------

template <layer_kind K, class T, class B, class Policy>
struct layer_of;
template <class T, class B, class Policy>
struct layer_of<layer_kind::dyt, T, B, Policy> {
  using type = dyt::DyT<T, B, Policy>;
  static type make(const case_cfg& c, const T* const* p) { return type(p[P_ALPHA], p[P_GAMMA], p[P_BETA], c.layer_cols); }
};
template <class T, class B, class Policy>
struct layer_of<layer_kind::derf, T, B, Policy> {
  using type = dyt::Derf<T, B>;
  static type make(const case_cfg& c, const T* const* p) {
    return type(p[P_ALPHA], p[P_SHIFT], p[P_GAMMA], p[P_BETA], c.layer_cols);
  }
};
template <class T, class B, class Policy>
struct layer_of<layer_kind::dyisru, T, B, Policy> {
  using type = dyt::DyISRU<T, B>;
  static type make(const case_cfg& c, const T* const* p) { return type(p[P_ALPHA], p[P_GAMMA], p[P_BETA], c.layer_cols); }
};
template <class T, class B, class Policy>
struct layer_of<layer_kind::layer_norm, T, B, Policy> {
  using type = dyt::LayerNorm<T, B>;
  static type make(const case_cfg& c, const T* const* p) { return type(p[P_GAMMA], p[P_BETA], c.layer_cols, c.eps); }
};
template <class T, class B, class Policy>
struct layer_of<layer_kind::rms_norm, T, B, Policy> {
  using type = dyt::RMSNorm<T, B>;
  static type make(const case_cfg& c, const T* const* p) {
    return type(p[P_GAMMA], c.layer_cols, c.eps, c.one_plus ? dyt::gamma_form::one_plus : dyt::gamma_form::plain);
  }
};

template <layer_kind K>
constexpr int stats_saved = pointwise<K> ? 0 : K == layer_kind::layer_norm ? 2 : 1;
template <layer_kind K>
constexpr bool layer_has(int p) {
  if (p == P_SHIFT) return K == layer_kind::derf;
  return pointwise<K> ? true : K == layer_kind::layer_norm ? p != P_ALPHA : p == P_GAMMA;
}

template <layer_kind K, class L, class T, class C>
typename L::gradients grads_of(T* const* g) {
  typename L::gradients out;
  if constexpr (pointwise<K>) {
    out.dalpha = g[P_ALPHA];
    out.dgamma = g[P_GAMMA];
    out.dbeta = g[P_BETA];
    if constexpr (K == layer_kind::derf) out.dshift = g[P_SHIFT];
  } else if constexpr (K == layer_kind::layer_norm) {
    out.dgamma = g[P_GAMMA];
    out.dbeta = g[P_BETA];
  } else {
    out.dgamma = g[P_GAMMA];
  }
  return out;
}

// The workspace the chunk API needs, from backward_plan.hpp's documented layout.
template <layer_kind K, class C>
std::size_t workspace_needed(const case_cfg& c, index_t chunks) {
  const index_t col_grads = (layer_has<K>(P_GAMMA) && c.param[P_GAMMA].present) +
                            (K != layer_kind::rms_norm && c.param[P_BETA].present);
  const index_t scalar_grads = K == layer_kind::derf ? 2 : pointwise<K> ? 1 : 0;
  if (col_grads == 0 && scalar_grads == 0) return 0;
  if (chunks < 1 || c.layer_cols < 1) return 0;
  // Beyond the address space: SIZE_MAX (computed without overflowing).
  if (c.layer_cols > (PTRDIFF_MAX - 64) / 2) return SIZE_MAX;
  const index_t per_line = index_t(64 / sizeof(C));
  const index_t n = col_grads * c.layer_cols + scalar_grads;
  const std::size_t stride = std::size_t((n + per_line - 1) / per_line * per_line);
  if (stride > SIZE_MAX / sizeof(C) / std::size_t(chunks)) return SIZE_MAX;
  return std::size_t(chunks) * stride * sizeof(C);
}

// One call of a case, with its predicted status.
template <layer_kind K, class T, class B, class Policy>
struct caller {
  using L = typename layer_of<K, T, B, Policy>::type;
  using C = typename L::compute_type;
  const case_cfg& c;
  bound_case<T, C> p;
  L layer;

  caller(const case_cfg& cfg, const arena& a)
      : c(cfg), p(cfg, a), layer(layer_of<K, T, B, Policy>::make(cfg, const_cast<const T* const*>(p.param))) {}

  dyt::grad_mode mode() const { return c.accumulate ? dyt::grad_mode::accumulate : dyt::grad_mode::overwrite; }
  dyt::rows_view<const T> cx() const { return p.x; }
  dyt::rows_view<const T> cdy() const { return p.dy; }
  dyt::rows_view<const T> cdh() const { return p.r; }
  dyt::row_stats<const C> saved() const { return {p.mean, p.rstd}; }

  void check_layer(predictor& pr) const {
    if (c.layer_cols < 1) pr.add(dyt::errc::bad_size);
    if (pointwise<K> && !p.param[P_ALPHA]) pr.add(dyt::errc::null_pointer);
    if (K == layer_kind::derf && !p.param[P_SHIFT]) pr.add(dyt::errc::null_pointer);
    if (!pointwise<K> && !(std::isfinite(c.eps) && c.eps >= 0 && c.eps <= compute_max<C>()))
      pr.add(dyt::errc::bad_parameter);
    if (K == layer_kind::rms_norm && c.one_plus && !p.param[P_GAMMA]) pr.add(dyt::errc::null_pointer);
  }
  void add_params(predictor& pr) const {
    for (int i = 0; i < kParams; ++i)
      if (layer_has<K>(i)) pr.add_array(p.param[i], scalar_param(i) ? 1 : c.layer_cols, false);
  }
  void check_grads(predictor& pr) const {
    for (int i = 1; i < 3; ++i)
      if (layer_has<K>(i) && p.grad[i] && !p.param[i]) pr.add(dyt::errc::bad_parameter);
    for (int i = 0; i < kParams; ++i)
      if (layer_has<K>(i)) pr.add_array(p.grad[i], scalar_param(i) ? 1 : c.layer_cols, true);
  }
  // The residual passes' extra view: residual (forward: read and written) or
  // dh (backward: read), the shape of x (h).
  void check_residual(predictor& pr, bool output) const {
    pr.view(p.r);
    if (p.r.rows != p.x.rows || p.r.cols != p.x.cols) pr.add(dyt::errc::size_mismatch);
    pr.add_view(p.r, output);
  }
  void check_backward(predictor& pr, bool with_saved) const {
    check_layer(pr);
    pr.view(p.x);
    pr.view(p.dy);
    pr.view(p.dx);
    if (p.x.cols != c.layer_cols) pr.add(dyt::errc::size_mismatch);
    if (p.dy.rows != p.x.rows || p.dy.cols != p.x.cols) pr.add(dyt::errc::size_mismatch);
    if (p.dx.rows != p.x.rows || p.dx.cols != p.x.cols) pr.add(dyt::errc::size_mismatch);
    const C* m = with_saved ? p.mean : nullptr;
    const C* r = with_saved ? p.rstd : nullptr;
    if (stats_saved<K> == 1 && m) pr.add(dyt::errc::bad_parameter);
    if (stats_saved<K> == 2 && (m == nullptr) != (r == nullptr)) pr.add(dyt::errc::null_pointer);
    pr.add_view(cx(), false);
    pr.add_view(cdy(), false);
    pr.add_view(p.dx, true);
    pr.add_array(m, p.x.rows, false);
    pr.add_array(r, p.x.rows, false);
    add_params(pr);
  }

  // forward / forward with statistics
  // Every forward's checks and regions (layer_base.hpp, check_forward): y is
  // p.y or the quantized forward's codes; m, r the statistics it saves.
  template <class Y>
  void check_forward(predictor& pr, const dyt::rows_view<Y>& y, C* m, C* r) const {
    check_layer(pr);
    pr.view(p.x);
    pr.view(y);
    if (p.x.cols != c.layer_cols) pr.add(dyt::errc::size_mismatch);
    if (y.rows != p.x.rows || y.cols != p.x.cols) pr.add(dyt::errc::size_mismatch);
    if (stats_saved<K> < 2 && m) pr.add(dyt::errc::bad_parameter);
    pr.add_view(cx(), false);
    pr.add_view(y, true);
    pr.add_array(m, p.x.rows, true);
    pr.add_array(r, p.x.rows, true);
    add_params(pr);
  }

  dyt::status forward(predictor& pr, bool stats) {
    C* m = stats ? p.mean : nullptr;
    C* r = stats ? p.rstd : nullptr;
    check_forward(pr, p.y, m, r);
    if (c.residual) check_residual(pr, true);
    pr.check_overlap();
    if constexpr (pointwise<K>) {
      if (c.residual) return layer.forward_residual(cx(), p.r, p.y);
      return layer.forward(cx(), p.y);
    } else {
      if (c.residual) {
        if (stats) return layer.forward_residual(cx(), p.r, p.y, {m, r});
        return layer.forward_residual(cx(), p.r, p.y);
      }
      if (stats) return layer.forward(cx(), p.y, {m, r});
      return layer.forward(cx(), p.y);
    }
  }

  // forward_quantized with a per-row scale (scales.out: x.rows values, an
  // output), saving statistics or not (layer_base.hpp, forward_quantized_impl).
  template <class Q>
  dyt::status forward_quantized(predictor& pr, bool stats) {
    const dyt::rows_view<Q> y = p.template codes_as<Q>();
    C* m = stats ? p.mean : nullptr;
    C* r = stats ? p.rstd : nullptr;
    check_forward(pr, y, m, r);
    if (!p.scales) pr.add(dyt::errc::null_pointer);
    pr.add_array(p.scales, p.x.rows, true);
    pr.check_overlap();
    const dyt::per_row_scale<C> scales{p.scales};
    if constexpr (pointwise<K>) {
      return layer.forward_quantized(cx(), y, scales);
    } else {
      if (stats) return layer.forward_quantized(cx(), y, scales, {m, r});
      return layer.forward_quantized(cx(), y, scales);
    }
  }

  // The point-wise layers' forward_quantized with a per-channel scale
  // (scales.in: the layer's cols values, an input).
  template <class Q>
  dyt::status forward_quantized_static(predictor& pr) {
    const dyt::rows_view<Q> y = p.template codes_as<Q>();
    check_forward(pr, y, nullptr, nullptr);
    if (!p.scales) pr.add(dyt::errc::null_pointer);
    pr.add_array(static_cast<const C*>(p.scales), c.layer_cols, false);
    pr.check_overlap();
    if constexpr (pointwise<K>) return layer.forward_quantized(cx(), y, dyt::per_channel_scale<C>{p.scales});
    return dyt::status();
  }

  // static_scales<Q>(out): out holds the layer's cols values, an output; the
  // parameters are its only inputs.
  template <class Q>
  dyt::status static_scales(predictor& pr) {
    check_layer(pr);
    if (!p.scales) pr.add(dyt::errc::null_pointer);
    // No array of cols values of C fits the address space (as for views' sizes).
    if (c.layer_cols > PTRDIFF_MAX / index_t(sizeof(C))) pr.add(dyt::errc::bad_size);
    pr.add_array(p.scales, c.layer_cols, true);
    add_params(pr);
    pr.check_overlap();
    if constexpr (pointwise<K>) return layer.template static_scales<Q>(p.scales);
    return dyt::status();
  }

  dyt::status backward(predictor& pr, bool with_saved) {
    check_backward(pr, with_saved);
    if (c.residual) check_residual(pr, false);
    check_grads(pr);
    pr.check_overlap();
    const auto g = grads_of<K, L, T, C>(p.grad);
    if constexpr (pointwise<K>) {
      if (c.residual) return layer.backward_residual(cx(), cdy(), cdh(), p.dx, g, mode());
      return layer.backward(cx(), cdy(), p.dx, g, mode());
    } else {
      if (c.residual) {
        if (with_saved) return layer.backward_residual(cx(), cdy(), cdh(), p.dx, g, mode(), saved());
        return layer.backward_residual(cx(), cdy(), cdh(), p.dx, g, mode());
      }
      if (with_saved) return layer.backward(cx(), cdy(), p.dx, g, mode(), saved());
      return layer.backward(cx(), cdy(), p.dx, g, mode());
    }
  }

  dyt::backward_plan plan() const { return dyt::backward_plan{c.plan_rows, c.plan_chunks}; }

  dyt::status chunks(predictor& pr, index_t first, index_t last, bool with_saved) {
    const dyt::backward_plan pl = plan();
    if (pl.rows != p.x.rows) pr.add(dyt::errc::size_mismatch);
    if (pl.chunks < 1 || pl.chunks > pl.rows) pr.add(dyt::errc::bad_range);
    if (!(0 <= first && first <= last && last <= pl.chunks)) pr.add(dyt::errc::bad_range);
    check_workspace(pr, pl);
    check_backward(pr, with_saved);
    if (c.residual) check_residual(pr, false);
    pr.add_array(static_cast<unsigned char*>(p.ws), index_t(c.ws_size), true);
    pr.check_overlap();
    if (c.residual) {
      if constexpr (pointwise<K>) {
        return layer.backward_chunks_residual(pl, first, last, cx(), cdy(), cdh(), p.dx, p.ws, c.ws_size);
      } else {
        if (with_saved)
          return layer.backward_chunks_residual(pl, first, last, cx(), cdy(), cdh(), p.dx, p.ws, c.ws_size, saved());
        return layer.backward_chunks_residual(pl, first, last, cx(), cdy(), cdh(), p.dx, p.ws, c.ws_size);
      }
    }
    if constexpr (pointwise<K>) {
      return layer.backward_chunks(pl, first, last, cx(), cdy(), p.dx, p.ws, c.ws_size);
    } else {
      if (with_saved) return layer.backward_chunks(pl, first, last, cx(), cdy(), p.dx, p.ws, c.ws_size, saved());
      return layer.backward_chunks(pl, first, last, cx(), cdy(), p.dx, p.ws, c.ws_size);
    }
  }

  dyt::status reduce(predictor& pr) {
    const dyt::backward_plan pl = plan();
    check_layer(pr);
    if (pl.chunks < 1 || pl.chunks > pl.rows) pr.add(dyt::errc::bad_range);
    check_workspace(pr, pl);
    pr.add_array(static_cast<const unsigned char*>(p.ws), index_t(c.ws_size), false);
    add_params(pr);
    check_grads(pr);
    pr.check_overlap();
    return layer.reduce_gradients(pl, p.ws, c.ws_size, grads_of<K, L, T, C>(p.grad), mode());
  }

  void check_workspace(predictor& pr, const dyt::backward_plan& pl) const {
    const std::size_t needed = workspace_needed<K, C>(c, pl.chunks);
    if (layer.workspace_bytes(pl) != needed)
      finding("workspace_bytes(plan {%lld, %lld}) is %zu, the documented layout needs %zu", (long long)pl.rows,
              (long long)pl.chunks, layer.workspace_bytes(pl), needed);
    if (needed == 0) return;
    if (!p.ws) return pr.add(dyt::errc::null_pointer);
    if (c.ws_size < needed) return pr.add(dyt::errc::bad_workspace);
    if (reinterpret_cast<std::uintptr_t>(p.ws) % alignof(C) != 0) pr.add(dyt::errc::bad_workspace);
  }
};

}  // namespace fz
