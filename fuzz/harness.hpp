// fuzz/harness.hpp: runs one decoded case on dyt::cpu and dyt::cpu_scalar and
// checks it (driver.hpp describes what is checked). fuzz_<layer>.cpp only
// names the layer.
#pragma once

#include "run_case.hpp"

namespace fz {

template <class B>
const char* backend_name() {
  return std::is_same<B, dyt::cpu>::value ? "cpu" : "cpu_scalar";
}

// Byte runs of the arena a case's calls may touch (unpoisoned while they run).
inline void add_view_runs(std::vector<std::pair<std::size_t, std::size_t>>& runs, const arena& a, const view_cfg& v,
                          std::size_t es) {
  // (A huge stride is harmless with one row; with more the call is refused.)
  if (v.slot < 0 || v.rows < 1 || v.cols < 1 || v.rows > 4096 || v.cols > 8192) return;
  if (v.rows > 1 && v.stride > (index_t(1) << 20)) return;
  const std::size_t base = a.at(v.slot).offset + std::size_t(v.off) * es;
  for (index_t r = 0; r < v.rows; ++r) runs.push_back({base + std::size_t(r * v.stride) * es, std::size_t(v.cols) * es});
}
inline void add_array_runs(std::vector<std::pair<std::size_t, std::size_t>>& runs, const arena& a, const array_cfg& s,
                           std::size_t es) {
  if (!s.present || s.slot < 0) return;
  const std::size_t start = a.at(s.slot).offset + std::size_t(s.off) * es;
  const std::size_t limit = a.at(s.slot).offset + a.at(s.slot).bytes;
  if (start < limit) runs.push_back({start, std::min(std::size_t(s.n) * es, limit - start)});
}

// Bytes of the arena an accepted call may write.
struct output_mask {
  std::vector<unsigned char> m;
  explicit output_mask(std::size_t n) : m(n, 0) {}
  template <class U>
  void view(const arena& a, const dyt::rows_view<U>& v) {
    if (!v.data) return;
    const std::size_t base = std::size_t(reinterpret_cast<const unsigned char*>(v.data) - a.base());
    for (index_t r = 0; r < v.rows; ++r)
      for (std::size_t b = 0; b < std::size_t(v.cols) * sizeof(U); ++b)
        m[base + std::size_t(r * v.row_stride) * sizeof(U) + b] = 1;
  }
  template <class U>
  void array(const arena& a, const U* p, index_t n) {
    if (p) view(a, dyt::rows_view<const U>(p, 1, n));
  }
};

template <layer_kind K, class T, class Policy>
struct case_runner {
  using C = dyt::compute_t<T>;
  case_cfg c;
  arena initial;
  inputs in;
  truth t;
  bool have_truth = false;
  std::string label;
  int quant_stage = 1;  // which call of a quantized pass runs: 0 static_scales(), 1 forward_quantized

  // Per backend: the fuzzed call's outputs, and the same computation done the
  // plain way (out of place, overwrite, every gradient, statistics recomputed,
  // backward() rather than the chunk API) on dense copies of the inputs.
  // A residual backward's canonical call is backward_residual; `plain` then
  // holds backward()'s gradients on the same h, which it must equal bit for bit.
  struct result {
    bool accepted = false;
    outputs primary, canonical, plain;
  };

  template <class B>
  using layer_t = typename layer_of<K, T, B, Policy>::type;

  // Runs one library call under ASan poisoning, checks its status against the
  // prediction and, when refused, that the arena is byte for byte unchanged.
  template <class F>
  bool call(arena& a, const char* what, F&& f) {
    std::vector<std::pair<std::size_t, std::size_t>> runs;
    add_view_runs(runs, a, c.x, sizeof(T));
    if (!c.q.on) add_view_runs(runs, a, c.y, sizeof(T));  // a quantized call writes codes instead
    add_view_runs(runs, a, c.dy, sizeof(T));
    add_view_runs(runs, a, c.dx, sizeof(T));
    if (c.residual) add_view_runs(runs, a, c.r, sizeof(T));
    for (int i = 0; i < kParams; ++i) {
      add_array_runs(runs, a, c.param[i], sizeof(T));
      add_array_runs(runs, a, c.grad[i], sizeof(T));
    }
    add_array_runs(runs, a, c.mean, sizeof(C));
    add_array_runs(runs, a, c.rstd, sizeof(C));
    if (c.ws_slot >= 0) {
      const arena::slot& s = a.at(c.ws_slot);
      runs.push_back({s.offset + c.ws_off, std::min(c.ws_size, s.bytes - c.ws_off)});
    }
    if (c.q.on) {
      add_view_runs(runs, a, c.q.codes, 1);
      if (c.q.slot >= 0 && !c.q.null) {
        // x.rows or the layer's cols values (static_scales() of a layer of cols + 1 writes cols + 1).
        const arena::slot& s = a.at(c.q.slot);
        const index_t n = std::max(c.q.n, c.layer_cols > 0 && c.layer_cols < (index_t(1) << 24) ? c.layer_cols : 0);
        runs.push_back({s.offset + c.q.byte_off, std::min(std::size_t(n) * sizeof(C), s.bytes - c.q.byte_off)});
      }
    }
    std::vector<unsigned char> before(a.base(), a.base() + a.size());
    predictor pr;
    a.poison_except(runs);
    const dyt::status s = f(pr);
    a.unpoison();
    if (s.ok() != pr.ok() || (!s.ok() && !pr.allows(s.code())))
      finding("%s: status %s (%s), but the documented rules predict %s (codes mask 0x%x)", what,
              dyt::to_string(s.code()), s.message(), pr.ok() ? "acceptance" : "refusal", pr.codes());
    if (!s.ok()) {
      if (std::memcmp(before.data(), a.base(), a.size()) != 0) {
        std::size_t i = 0;
        while (before[i] == a.base()[i]) ++i;
        finding("%s: refused (%s) but changed arena byte %zu", what, s.message(), i);
      }
      if (std::strncmp(s.message(), "dyt::", 5) != 0) finding("%s: refusal message '%s' names no function", what, s.message());
      return false;
    }
    if (!pr.truly_disjoint()) finding("%s: accepted a call whose outputs overlap another buffer", what);
    // Accepted: nothing outside the outputs changed.
    const bound_case<T, C> p(c, a);
    output_mask mask(a.size());
    if (c.backward()) {
      mask.view(a, p.dx);
      for (int i = 0; i < kParams; ++i) mask.array(a, p.grad[i], scalar_param(i) ? 1 : c.layer_cols);
      if (c.pass == pass_kind::chunks && p.ws) mask.array(a, static_cast<unsigned char*>(p.ws), index_t(c.ws_size));
    } else if (c.q.on) {
      if (quant_stage == 0) {  // static_scales(): the layer's cols values
        mask.array(a, p.scales, c.layer_cols);
      } else {
        mask.view(a, p.codes);
        if (c.q.scale == scale_kind::per_row) mask.array(a, p.scales, c.rows);
        if (c.pass == pass_kind::forward_stats) {
          mask.array(a, p.mean, c.rows);
          mask.array(a, p.rstd, c.rows);
        }
      }
    } else {
      mask.view(a, p.y);
      if (c.residual) mask.view(a, p.r);
      if (c.pass == pass_kind::forward_stats) {
        mask.array(a, p.mean, c.rows);
        mask.array(a, p.rstd, c.rows);
      }
    }
    for (std::size_t i = 0; i < a.size(); ++i)
      if (!mask.m[i] && before[i] != a.base()[i])
        finding("%s: accepted, and wrote arena byte %zu outside its outputs", what, i);
    return true;
  }

  // Saved statistics for a backward pass: this backend's own forward on the same x.
  template <class B>
  void fill_saved(arena& a) {
    if (c.saved_arbitrary || !(c.mean.present || c.rstd.present) || c.pass == pass_kind::forward_stats) return;
    if (c.rows > 4096 || c.cols > 8192 || c.x.rows != c.rows || c.x.cols != c.cols || c.x.null) return;
    const bound_case<T, C> p(c, a);
    if (p.x.row_stride < p.x.cols || c.layer_cols != c.cols) return;
    if (pointwise<K>) return;
    std::vector<T> y(std::size_t(c.rows * c.cols));
    const auto layer = layer_of<K, T, B, Policy>::make(c, const_cast<const T* const*>(p.param));
    std::vector<C> mean(std::size_t(c.rows)), rstd(std::size_t(c.rows));
    dyt::status s;
    if constexpr (!pointwise<K>)
      s = layer.forward(dyt::rows_view<const T>(p.x), dyt::rows_view<T>(y.data(), c.rows, c.cols),
                        {K == layer_kind::layer_norm ? mean.data() : nullptr, rstd.data()});
    if (!s.ok()) return;
    if (p.mean) std::memcpy(static_cast<void*>(p.mean), mean.data(), mean.size() * sizeof(C));
    if (p.rstd) std::memcpy(static_cast<void*>(p.rstd), rstd.data(), rstd.size() * sizeof(C));
  }

  // The layer over dense copies of the case's parameters (kept in params,
  // which must outlive it), and dense copies of a case's views: the plain
  // computation results are held to.
  template <class B>
  auto dense_layer(const bound_case<T, C>& p0, std::vector<T> (&params)[kParams]) const {
    const T* pp[kParams] = {nullptr, nullptr, nullptr, nullptr};
    for (int i = 0; i < kParams; ++i)
      if (p0.param[i]) {
        params[i].assign(p0.param[i], p0.param[i] + (scalar_param(i) ? 1 : c.cols));
        pp[i] = params[i].data();
      }
    return layer_of<K, T, B, Policy>::make(c, pp);
  }
  std::vector<T> dense(const dyt::rows_view<T>& v) const {
    std::vector<T> d(std::size_t(c.rows * c.cols));
    for (index_t r = 0; r < c.rows; ++r)
      for (index_t j = 0; j < c.cols; ++j) d[std::size_t(r * c.cols + j)] = v.data[r * v.row_stride + j];
    return d;
  }

  template <class B>
  result run_backend() {
    result res;
    arena a(initial);
    fill_saved<B>(a);
    std::string what = label + " / " + backend_name<B>();
    if (c.pass == pass_kind::forward || c.pass == pass_kind::forward_stats) {
      res.accepted = call(a, what.c_str(), [&](predictor& pr) {
        caller<K, T, B, Policy> k(c, a);
        return k.forward(pr, c.pass == pass_kind::forward_stats);
      });
    } else if (c.pass == pass_kind::chunks) {
      const bool saved = c.mean.present || c.rstd.present;
      res.accepted = true;
      for (const auto& range : c.ranges) {
        const std::string w = what + " backward_chunks";
        if (!call(a, w.c_str(), [&](predictor& pr) {
              caller<K, T, B, Policy> k(c, a);
              return k.chunks(pr, range.first, range.second, saved);
            })) {
          res.accepted = false;
          break;
        }
      }
      if (res.accepted) {
        const std::string w = what + " reduce_gradients";
        res.accepted = call(a, w.c_str(), [&](predictor& pr) {
          caller<K, T, B, Policy> k(c, a);
          return k.reduce(pr);
        });
      }
    } else {
      res.accepted = call(a, what.c_str(), [&](predictor& pr) {
        caller<K, T, B, Policy> k(c, a);
        return k.backward(pr, c.pass == pass_kind::backward_saved);
      });
    }
    if (!res.accepted) return res;

    const bound_case<T, C> p(c, a);
    if (c.backward()) {
      res.primary.dx = read_view(p.dx);
      for (int i = 0; i < kParams; ++i) res.primary.grad[i] = read_array(p.grad[i], scalar_param(i) ? 1 : c.cols);
    } else {
      res.primary.y = read_view(p.y);
      if (c.residual) res.primary.h = read_view(p.r);
      if (c.pass == pass_kind::forward_stats) {
        res.primary.mean = read_array(p.mean, c.rows);
        res.primary.rstd = read_array(p.rstd, c.rows);
      }
    }

    // The plain computation on dense copies.
    const bound_case<T, C> p0(c, initial);
    std::vector<T> params[kParams];
    const auto layer = dense_layer<B>(p0, params);
    std::vector<T> x = dense(p0.x);
    const dyt::rows_view<T> xv(x.data(), c.rows, c.cols);
    if (!c.backward()) {
      if (c.residual) {
        // h = fl(x + residual), rounded once to T (run_case.hpp, read_inputs):
        // the fused call must leave exactly this, and y = forward(h).
        const std::vector<T> r = dense(p0.r);
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = from_d<T>(to_d(x[i]) + to_d(r[i]));
        res.canonical.h = read_view(dyt::rows_view<const T>(xv));
      }
      std::vector<T> y(x.size());
      if (!layer.forward(xv, {y.data(), c.rows, c.cols}).ok()) finding("plain forward refused");
      res.canonical.y = read_view(dyt::rows_view<const T>(y.data(), c.rows, c.cols));
    } else {
      const std::vector<T> dy = dense(p0.dy);
      using L = layer_t<B>;
      // backward(), or backward_residual() with the dense dh, out of place, every gradient.
      auto backward = [&](bool residual, outputs& o) {
        std::vector<T> dx(x.size());
        std::vector<T> g[kParams];
        T* gp[kParams] = {nullptr, nullptr, nullptr, nullptr};
        for (int i = 0; i < kParams; ++i)
          if (layer_has<K>(i) && p0.param[i]) {
            g[i].assign(scalar_param(i) ? 1 : std::size_t(c.cols), T());
            gp[i] = g[i].data();
          }
        const auto grads = grads_of<K, L, T, C>(gp);
        const dyt::rows_view<const T> xc(x.data(), c.rows, c.cols), dyc(dy.data(), c.rows, c.cols);
        const dyt::rows_view<T> dxv(dx.data(), c.rows, c.cols);
        if (residual) {
          const std::vector<T> dh = dense(p0.r);
          if (!layer.backward_residual(xc, dyc, {dh.data(), c.rows, c.cols}, dxv, grads).ok())
            finding("plain backward_residual refused");
        } else if (!layer.backward(xc, dyc, dxv, grads).ok()) {
          finding("plain backward refused");
        }
        o.dx = read_view(dyt::rows_view<const T>(dxv));
        for (int i = 0; i < kParams; ++i)
          if (gp[i]) o.grad[i] = read_array(static_cast<const T*>(gp[i]), scalar_param(i) ? 1 : c.cols);
      };
      backward(c.residual, res.canonical);
      if (c.residual) backward(false, res.plain);
    }
    return res;
  }

  // ---- Comparisons ------------------------------------------------------------------------

  static double store_error(double m, bool rounded) {
    if (!rounded) return 0;
    if constexpr (dyt::is_16bit_v<T>) return half_ulp<T>(m);
    return 0;
  }
  double bound(const expect& e, std::size_t i, double got, bool rounded) const {
    const double sc = e.scale[i];
    if (!std::isfinite(sc) || !std::isfinite(e.k[i])) return HUGE_VAL;
    const double m = std::max(std::fabs(got), std::fabs(e.ref[i]));
    return store_error(m, rounded) + e.k[i] * (unit_roundoff<C>() + 0x1p-53) * sc + e.extra[i];
  }

  // Got against the truth (b).
  void check_truth(const char* what, const out_vec& got, const expect& e, bool rounded) const {
    if (!got.present) return;
    const double tmax = rounded ? max_finite<T>() : compute_max<C>();
    for (std::size_t i = 0; i < got.v.size(); ++i) {
      if (e.skip[i]) continue;
      const double g = got.v[i], r = e.ref[i];
      const double b = bound(e, i, g, rounded);
      if (std::isnan(r)) {
        if (!std::isnan(g) && !e.overflow[i])
          finding("%s[%zu]: %.9g where the float64 reference is NaN", what, i, g);
      } else if (std::isinf(r)) {
        if (std::isfinite(g) && !e.overflow[i])
          finding("%s[%zu]: finite %.9g where the float64 reference is %g", what, i, g, r);
      } else if (!std::isfinite(g)) {
        // The unrounded result lies in [r - b, r + b]; rounding to T gives an
        // infinity of either sign that interval reaches beyond T's largest.
        const bool rounds_to_inf = std::isinf(g) && (g > 0 ? r + b >= tmax : r - b <= -tmax);
        if (!rounds_to_inf && !e.overflow[i])
          finding("%s[%zu]: %g where the float64 reference is finite (%.17g, bound %.3g)", what, i, g, r, b);
      } else if (!(std::fabs(g - r) <= b)) {
        finding("%s[%zu]: %.9g, float64 reference %.17g, |diff| %.3g > bound %.3g (k %.4g, scale %.4g, extra %.3g)",
                what, i, g, r, std::fabs(g - r), b, e.k[i], e.scale[i], e.extra[i]);
      }
    }
  }

  // cpu against cpu_scalar (c): NaNs in the same places, values within the sum of their bounds.
  void check_agree(const char* what, const out_vec& a, const out_vec& s, const expect& e, bool rounded) const {
    if (!a.present || !s.present) return;
    if (a.v.size() != s.v.size()) finding("%s: cpu and cpu_scalar outputs differ in size", what);
    for (std::size_t i = 0; i < a.v.size(); ++i) {
      if (e.skip[i] || e.overflow[i]) continue;
      const double x = a.v[i], y = s.v[i];
      // With an infinite input, Inf * 0 = NaN where a value rounds to exactly
      // 0 on one backend and Inf * tiny = Inf where it does not
      // (docs/numerics.md, limits): NaN positions need not agree there.
      if (std::isnan(x) != std::isnan(y) && !in.any_inf)
        finding("%s[%zu]: cpu %.9g, cpu_scalar %.9g: NaN in one only", what, i, x, y);
      if (std::isfinite(x) && std::isfinite(y) && std::isfinite(e.ref[i])) {
        const double b = bound(e, i, x, rounded) + bound(e, i, y, rounded);
        if (!(std::fabs(x - y) <= b))
          finding("%s[%zu]: cpu %.9g vs cpu_scalar %.9g, |diff| %.3g > %.3g", what, i, x, y, std::fabs(x - y), b);
      }
    }
  }

  // forward_residual's h: exactly the rounded sum (NaN: any NaN).
  void check_h(const char* what, const out_vec& got, const out_vec& want) const {
    if (!got.present) return;
    const std::size_t e = sizeof(T);
    for (std::size_t i = 0; i < got.v.size(); ++i) {
      if (std::isnan(got.v[i]) && std::isnan(want.v[i])) continue;
      if (std::memcmp(&got.bits[i * e], &want.bits[i * e], e) != 0)
        finding("%s[%zu]: %.17g, but fl(x + residual) = %.17g (x %.17g, residual %.17g)", what, i, got.v[i],
                want.v[i], in.x_in[i], in.res[i]);
    }
  }

  // Bit for bit, NaN for NaN: between two instantiations of a row function
  // (forward_residual's and forward()'s, backward_residual's and backward()'s),
  // an operation with two NaN operands returns whichever the compiled code
  // passes first (x86), so a NaN's sign and payload need not agree; every
  // other value must. (A fused forward's h = x + residual is such an
  // operation too: h's NaN, and so y's, may differ in sign from the plain
  // sum's.)
  void check_bits_or_nan(const char* what, const out_vec& got, const out_vec& want) const {
    if (!got.present) return;
    if (got.v.size() != want.v.size()) finding("%s: %zu values, the plain call %zu", what, got.v.size(), want.v.size());
    const std::size_t e = sizeof(T);
    for (std::size_t i = 0; i < got.v.size(); ++i) {
      if (std::isnan(got.v[i]) && std::isnan(want.v[i])) continue;
      if (std::memcmp(&got.bits[i * e], &want.bits[i * e], e) != 0)
        finding("%s[%zu]: %.17g, the plain call %.17g: not bit-identical", what, i, got.v[i], want.v[i]);
    }
  }

  void check_bits(const char* what, const out_vec& got, const out_vec& want) const {
    if (!got.present) return;
    if (!same_bits(got, want)) {
      const std::size_t i = first_bit_difference(got, want);
      finding("%s: not bit-identical to the plain call; first difference at %zu: %.17g vs %.17g", what, i,
              i < got.v.size() ? got.v[i] : 0.0, i < want.v.size() ? want.v[i] : 0.0);
    }
  }

  // grad_mode::accumulate: exactly fl(prior + once) for float and double storage
  // (the sum is formed and stored in T's own type); otherwise within one
  // rounding in the compute type and the stores (tests/test_backward.cpp).
  void check_accumulate(const char* what, const out_vec& got, const out_vec& once, const std::vector<double>& prior) const {
    if (!got.present || !once.present) return;
    for (std::size_t i = 0; i < got.v.size(); ++i) {
      const double g = got.v[i], o = once.v[i], p = prior[i];
      if constexpr (std::is_same<C, T>::value) {
        const double want = double(T(p) + T(o));
        if (!(g == want || (std::isnan(g) && std::isnan(want))))
          finding("%s[%zu]: accumulate gave %.17g, prior %.17g + overwrite %.17g = %.17g", what, i, g, p, o, want);
      } else {
        // The overwrite result stored in 16 bits may have overflowed to Inf
        // where prior + (the unrounded sum) did not: nothing to compare with
        // here (check_accumulate_truth holds it to the reference instead).
        if (std::isinf(o)) continue;
        const double want = p + o;
        if (!std::isfinite(want) || !std::isfinite(g)) {
          if (std::isfinite(want) && std::isinf(g) && std::fabs(want) >= max_finite<T>() * (1 - 0x1p-9)) continue;
          if (std::isnan(want) != std::isnan(g) || (std::isinf(want) && g != want))
            finding("%s[%zu]: accumulate gave %g, prior %g + overwrite %g = %g", what, i, g, p, o, want);
          continue;
        }
        const double m = std::max(std::fabs(g), std::fabs(want));
        const double e_once = half_ulp<T>(std::fabs(o));
        const double b = half_ulp<T>(m) + e_once + unit_roundoff<C>() * (m + e_once);
        if (!(std::fabs(g - want) <= b))
          finding("%s[%zu]: accumulate gave %.9g, prior %.9g + overwrite %.9g = %.9g, bound %.3g", what, i, g, p, o,
                  want, b);
      }
    }
  }

  // Gradients summed under a plan other than the default one, in accumulate
  // mode: prior + (a sum within the gradient's bound of the truth), one
  // rounding in the compute type, one store.
  void check_accumulate_truth(const char* what, const out_vec& got, const expect& e, const std::vector<double>& prior) const {
    if (!got.present) return;
    for (std::size_t i = 0; i < got.v.size(); ++i) {
      if (e.skip[i] || e.overflow[i]) continue;
      const double g = got.v[i], want = prior[i] + e.ref[i];
      if (!std::isfinite(want) || !std::isfinite(g)) {
        if (std::isnan(want) != std::isnan(g) && std::isfinite(e.ref[i]) && std::isfinite(prior[i]))
          finding("%s[%zu]: accumulate gave %g, prior + reference = %g", what, i, g, want);
        continue;
      }
      const double m = std::max(std::fabs(g), std::fabs(want));
      // The sum's error (its bound), one rounding in C, one store to T, and
      // the rounding of `want` itself in double (it matters for double T).
      const double b = bound(e, i, g, false) + unit_roundoff<C>() * m + 2 * store_error(m, true) + 0x1p-53 * m;
      if (!(std::fabs(g - want) <= b))
        finding("%s[%zu]: accumulate gave %.17g, prior %.17g + reference %.17g = %.17g, bound %.3g", what, i, g, prior[i], e.ref[i], want, b);
    }
  }

  void check_backend(const char* bname, const result& r) {
    const std::string pre = label + " / " + bname + ": ";
    const bool default_plan = c.pass != pass_kind::chunks || c.plan_chunks == dyt::default_chunks(c.rows);
    const bool stats_trusted = !c.saved_arbitrary;
    if (!c.backward()) {
      if (c.residual) check_h((pre + "h (the residual after forward_residual)").c_str(), r.primary.h, r.canonical.h);
      if (c.residual)
        check_bits_or_nan((pre + "y (forward_residual against add, then forward)").c_str(), r.primary.y, r.canonical.y);
      else
        check_bits((pre + "y").c_str(), r.primary.y, r.canonical.y);
      if (have_truth) {
        check_truth((pre + "y").c_str(), r.canonical.y, t.y, true);
        check_truth((pre + "saved mean").c_str(), r.primary.mean, t.mean, false);
        check_truth((pre + "saved rstd").c_str(), r.primary.rstd, t.rstd, false);
      }
      return;
    }
    if (!stats_trusted) return;  // arbitrary saved statistics: only (a) and the guards
    check_bits((pre + "dx").c_str(), r.primary.dx, r.canonical.dx);
    if (have_truth) check_truth((pre + "dx").c_str(), r.canonical.dx, t.dx, true);
    for (int i = 0; i < kParams; ++i) {
      if (!layer_has<K>(i)) continue;
      const std::string w = pre + kGradNames[i];
      if (c.residual)
        check_bits_or_nan((w + " (backward_residual against backward)").c_str(), r.canonical.grad[i], r.plain.grad[i]);
      if (have_truth) check_truth(w.c_str(), r.canonical.grad[i], t.grad[i], true);
      if (!r.primary.grad[i].present) continue;
      if (default_plan) {
        if (c.accumulate) {
          check_accumulate((w + " (accumulate)").c_str(), r.primary.grad[i], r.canonical.grad[i], in.prior[i]);
          if (have_truth) check_accumulate_truth((w + " (accumulate)").c_str(), r.primary.grad[i], t.grad[i], in.prior[i]);
        } else {
          check_bits(w.c_str(), r.primary.grad[i], r.canonical.grad[i]);
        }
      } else if (have_truth) {
        if (c.accumulate) check_accumulate_truth((w + " (accumulate, own plan)").c_str(), r.primary.grad[i], t.grad[i], in.prior[i]);
        else check_truth((w + " (own plan)").c_str(), r.primary.grad[i], t.grad[i], true);
      }
    }
  }

  // ---- Quantized output -------------------------------------------------------------------
  // A quantized pass (byte 1 bit 4): static_scales() first where asked, then
  // forward_quantized; its codes, scales and statistics, and forward() on
  // dense copies of the inputs (saving statistics) for the identities.
  struct qresult {
    bool accepted = false;
    std::vector<std::uint8_t> codes;         // rows x cols, dense
    out_vec scales, mean, rstd;              // as the calls left them
    out_vec y, plain_mean, plain_rstd;       // forward()'s
  };

  template <class B, class Q>
  qresult run_quantized() {
    qresult res;
    arena a(initial);
    const std::string what = label + " / " + backend_name<B>();
    const bool stats = c.pass == pass_kind::forward_stats;
    if (c.q.scale == scale_kind::from_static_scales) {
      quant_stage = 0;
      const bool ok = call(a, (what + " static_scales").c_str(), [&](predictor& pr) {
        caller<K, T, B, Policy> k(c, a);
        return k.template static_scales<Q>(pr);
      });
      quant_stage = 1;
      if (!ok) return res;
    }
    res.accepted = call(a, (what + " forward_quantized").c_str(), [&](predictor& pr) {
      caller<K, T, B, Policy> k(c, a);
      if (c.q.scale == scale_kind::per_row) return k.template forward_quantized<Q>(pr, stats);
      return k.template forward_quantized_static<Q>(pr);
    });
    if (!res.accepted) return res;
    const bound_case<T, C> p(c, a);
    for (index_t r = 0; r < c.rows; ++r)
      for (index_t j = 0; j < c.cols; ++j) res.codes.push_back(p.codes.data[r * p.codes.row_stride + j]);
    res.scales = read_array(static_cast<const C*>(p.scales), c.q.n);
    if (stats) {
      res.mean = read_array(static_cast<const C*>(p.mean), c.rows);
      res.rstd = read_array(static_cast<const C*>(p.rstd), c.rows);
    }
    // forward() on dense copies, saving statistics.
    const bound_case<T, C> p0(c, initial);
    std::vector<T> params[kParams];
    const auto layer = dense_layer<B>(p0, params);
    std::vector<T> x = dense(p0.x), y(x.size());
    std::vector<C> mean(std::size_t(c.rows)), rstd(std::size_t(c.rows));
    const dyt::rows_view<const T> xv(x.data(), c.rows, c.cols);
    const dyt::rows_view<T> yv(y.data(), c.rows, c.cols);
    dyt::status s;
    if constexpr (pointwise<K>) s = layer.forward(xv, yv);
    else s = layer.forward(xv, yv, {K == layer_kind::layer_norm ? mean.data() : nullptr, rstd.data()});
    if (!s.ok()) finding("plain forward refused: %s", s.message());
    res.y = read_view(dyt::rows_view<const T>(yv));
    if (!pointwise<K>) {
      if (K == layer_kind::layer_norm) res.plain_mean = read_array(static_cast<const C*>(mean.data()), c.rows);
      res.plain_rstd = read_array(static_cast<const C*>(rstd.data()), c.rows);
    }
    return res;
  }

  template <class B>
  qresult run_quantized() {
    return c.q.e4m3 ? run_quantized<B, dyt::float8_e4m3>() : run_quantized<B, std::int8_t>();
  }

  // The layer's own bound on its compute-type y at i (the truth's, without the store to T).
  double y_bound(std::size_t i) const { return bound(t.y, i, 0.0, false); }
  bool y_flagged(std::size_t i) const { return t.y.skip[i] || t.y.overflow[i]; }

  // Bound on |q s - y_ref| for a dynamic (per-row) code q of scale s > 0. With
  // absmax the row's largest |y| as the layer computed it (y_L, within E =
  // y_bound of y_ref): s = fl(absmax / qmax) = (absmax / qmax)(1 + d) + e, |d|
  // <= u, |e| <= tiny / 2 (a scale that underflowed, docs/quantize.md); the
  // encoder rounds v = fl(fl(y_L * pre) * inv), within 2u |v| of v* = y_L qmax /
  // absmax (inv = fl(qmax / (absmax pre)), pre = 1 or 2^64: exact), to q,
  // within half_step(|v|) (saturating only the row maximum's 2u overshoot).
  // So q s - y_L = (q - v*)(s - e) + y_L d + q e, and
  //   |q s - y_ref| <= hs (s + tiny)(1 + 4u) + 4u (|y_ref| + E) + E + qmax tiny,
  // the documented bound (docs/quantize.md, tests/test_quantize.cpp: half a
  // step of the format at the scale, 4u |v| s, the layer's own error) with
  // the layer's error taken from the harness's truth, and the scale's
  // subnormal rounding added (the tests never make one). hs is taken at
  // |v| <= (|y_ref| + E) / s (1 + 4u), or at qmax where s is subnormal; the
  // product q s in double adds 2^-53 |q s|.
  double dynamic_code_bound(double q, double s, double yr, double E, bool e4) const {
    const double u = unit_roundoff<C>(), tiny = subnormal_spacing<C>(), qmax = code_qmax(e4);
    if (s == 0) return E + qmax * tiny;  // q s = 0: the row's absmax (< qmax tiny) lost to the scale's underflow
    const double cmin = double(std::numeric_limits<C>::min());
    const double hs = code_half_step(s >= cmin ? std::min(qmax, (std::fabs(yr) + E) / s * (1 + 4 * u)) : qmax, e4);
    return hs * (s + tiny) * (1 + 4 * u) + 4 * u * (std::fabs(yr) + E) + E + qmax * tiny + 0x1p-53 * std::fabs(q * s);
  }

  // Bound, in code units, on |q - clamp(y_ref / s)| for a static code of
  // channel scale s (finite, > 0): v = fl(y_L / s) is within u |y_L / s| (+ an
  // underflow's tiny) of y_L / s, which is within E / s of y_ref / s;
  // clamping to [-qmax, qmax] (the encoder saturates) is 1-Lipschitz and the
  // encoder rounds the clamped value to within half a step:
  //   |q - clamp(y_ref / s)| <= hs + u (|y_ref| + E) / s + E / s + tiny.
  double static_code_bound(double s, double yr, double E, bool e4) const {
    const double u = unit_roundoff<C>(), tiny = subnormal_spacing<C>(), qmax = code_qmax(e4);
    const double reach = (std::fabs(yr) + E) / s;
    const double hs = code_half_step(std::min(qmax, reach * (1 + 2 * u) + tiny), e4);
    return hs + u * reach + E / s + tiny;
  }

  void check_quantized(const char* bname, const qresult& r) const {
    const std::string pre = label + " / " + bname + ": ";
    const char* w = pre.c_str();
    const bool e4 = c.q.e4m3;
    const double qmax = code_qmax(e4), u = unit_roundoff<C>();
    const index_t rows = c.rows, n = c.cols;
    auto nan_code = [&](std::uint8_t b) { return e4 ? (b & 0x7f) == 0x7f : b == 0; };  // int8 has no NaN: 0
    auto at = [&](index_t row, index_t j) { return std::size_t(row * n + j); };

    // The statistics: forward()'s, bit for bit (tests/test_quantize.cpp), and within their bounds.
    if (c.pass == pass_kind::forward_stats) {
      check_bits((pre + "saved mean (against forward())").c_str(), r.mean, r.plain_mean);
      check_bits((pre + "saved rstd (against forward())").c_str(), r.rstd, r.plain_rstd);
      if (have_truth) {
        check_truth((pre + "saved mean").c_str(), r.mean, t.mean, false);
        check_truth((pre + "saved rstd").c_str(), r.rstd, t.rstd, false);
      }
    }
    for (std::size_t i = 0; i < r.codes.size(); ++i)
      if (!e4 && r.codes[i] == 0x80) finding("%scode[%zu] is -128 (the int8 range is symmetric, +-127)", w, i);

    if (c.q.scale == scale_kind::per_row) {
      for (index_t row = 0; row < rows; ++row) {
        const double s = r.scales.v[std::size_t(row)];
        // The special-value rules (ops/quantize.hpp), from the call's own outputs.
        bool any_qmax = false, all_plus_zero = true, all_nan = true, any_nan = false, zero_or_nan = true;
        for (index_t j = 0; j < n; ++j) {
          const std::uint8_t b = r.codes[at(row, j)];
          const double q = code_value(b, e4);
          if (std::fabs(q) == qmax) any_qmax = true;
          if (b != 0) all_plus_zero = false;
          if (!nan_code(b)) all_nan = false;
          if (e4 && nan_code(b)) any_nan = true;
          if (!(nan_code(b) || q == 0)) zero_or_nan = false;
        }
        if (std::isnan(s)) {
          if (!all_nan) finding("%srow %lld: scale NaN, but a code is not %s", w, (long long)row, e4 ? "NaN" : "0");
        } else if (std::signbit(s)) {
          finding("%srow %lld: negative scale %g", w, (long long)row, s);
        } else if (std::isinf(s)) {
          if (!zero_or_nan) finding("%srow %lld: scale +Inf, but a code is neither +-0 nor NaN", w, (long long)row);
        } else if (s == 0) {
          // A row of zeros: every code +0. (A row whose absmax < qmax tiny has
          // a scale that underflowed to 0 and codes up to +-qmax.)
          if (!all_plus_zero && !any_qmax)
            finding("%srow %lld: scale 0, but its codes are neither all +0 nor reach +-qmax", w, (long long)row);
        } else {
          if (any_nan) finding("%srow %lld: finite scale %g with a NaN code", w, (long long)row, s);
          if (!any_qmax) finding("%srow %lld: scale %g, but no code is +-qmax (the row maximum's)", w, (long long)row, s);
        }
        if (!have_truth) continue;
        // Against the truth: the scale, then each code dequantized.
        bool flagged = false, ref_nan = false, ref_inf = false;
        double absref = 0, max_e = 0;
        for (index_t j = 0; j < n; ++j) {
          const std::size_t i = at(row, j);
          flagged = flagged || y_flagged(i);
          const double yr = t.y.ref[i];
          if (std::isnan(yr)) ref_nan = true;
          else if (std::isinf(yr)) ref_inf = true;
          else absref = std::max(absref, std::fabs(yr));
          max_e = std::max(max_e, y_bound(i));
        }
        if (flagged) continue;
        if (ref_nan) {
          if (!std::isnan(s)) finding("%srow %lld: scale %g where the reference row holds a NaN", w, (long long)row, s);
          continue;
        }
        if (ref_inf) {
          if (std::isfinite(s)) finding("%srow %lld: finite scale %g where the reference row holds an infinity", w,
                                        (long long)row, s);
          continue;
        }
        if (!std::isfinite(s)) finding("%srow %lld: scale %g where the reference row is finite", w, (long long)row, s);
        // s = fl(absmax / qmax), |absmax - absmax_ref| <= max E: within u (absmax_ref + max E) / qmax + max E / qmax
        // + tiny (a subnormal scale) of absmax_ref / qmax.
        const double want = absref / qmax;
        const double lim = (u * (absref + max_e) / qmax + max_e / qmax + subnormal_spacing<C>()) * (1 + 4 * u);
        if (!(std::fabs(s - want) <= lim))
          finding("%srow %lld: scale %.9g, reference absmax / qmax %.17g, |diff| %.3g > %.3g", w, (long long)row, s,
                  want, std::fabs(s - want), lim);
        for (index_t j = 0; j < n; ++j) {
          const std::size_t i = at(row, j);
          const double q = code_value(r.codes[i], e4), yr = t.y.ref[i], E = y_bound(i);
          const double lim_q = dynamic_code_bound(q, s, yr, E, e4);
          if (!(std::fabs(q * s - yr) <= lim_q))
            finding("%s[%lld, %lld]: code %g (0x%02x) x scale %.9g = %.9g, reference %.17g, |diff| %.3g > bound %.3g "
                    "(layer's bound %.3g)",
                    w, (long long)row, (long long)j, q, unsigned(r.codes[i]), s, q * s, yr, std::fabs(q * s - yr),
                    lim_q, E);
        }
      }
    } else {
      const bool fixed = c.q.scale == scale_kind::from_static_scales;
      if (fixed && have_truth) check_static_scales(w, r.scales);
      for (index_t row = 0; row < rows; ++row)
        for (index_t j = 0; j < n; ++j) {
          const std::size_t i = at(row, j);
          const double sj = r.scales.v[std::size_t(j)];
          const std::uint8_t b = r.codes[i];
          const double q = code_value(b, e4);
          if (!(sj > 0)) {  // 0, negative, NaN: code 0
            if (b != 0) finding("%s[%lld, %lld]: channel scale %g is not > 0, but the code is 0x%02x", w, (long long)row,
                                (long long)j, sj, unsigned(b));
            continue;
          }
          if (!have_truth || y_flagged(i)) continue;
          const double yr = t.y.ref[i], E = y_bound(i);
          if (std::isnan(yr) || (std::isinf(yr) && std::isinf(sj))) {  // NaN, or Inf / Inf
            if (!nan_code(b)) finding("%s[%lld, %lld]: code 0x%02x where y / scale is NaN (y %g, scale %g)", w,
                                      (long long)row, (long long)j, unsigned(b), yr, sj);
          } else if (std::isinf(yr)) {
            if (q != std::copysign(qmax, yr))
              finding("%s[%lld, %lld]: code %g where y is %g: it saturates", w, (long long)row, (long long)j, q, yr);
          } else if (std::isinf(sj)) {
            if (q != 0) finding("%s[%lld, %lld]: code %g with scale +Inf", w, (long long)row, (long long)j, q);
          } else {
            const double v = yr / sj, lim = static_code_bound(sj, yr, E, e4);
            // static_scales()' scales never clip: the code is y / s's own, no saturation.
            const double want = fixed ? v : std::max(-qmax, std::min(qmax, v));
            if (!(std::fabs(q - want) <= lim))
              finding("%s[%lld, %lld]: code %g (0x%02x), reference y / scale = %.17g / %.9g = %.9g%s, |diff| %.3g > "
                      "%.3g code units",
                      w, (long long)row, (long long)j, q, unsigned(b), yr, sj, v,
                      fixed ? " (static_scales: must not clip)" : "", std::fabs(q - want), lim);
          }
        }
    }
    if constexpr (std::is_same<T, C>::value) check_quantized_exact(w, r);
  }

  // static_scales(): scale_j = B_j (1 + 2^-(p - 6)) / qmax rounded up to C,
  // B_j = |gamma_j| + |beta_j| (null gamma: 1, null beta: 0), NaN for a NaN
  // parameter, +Inf beyond C's range (layers/pointwise.hpp, docs/quantize.md).
  // B_j's sum, product and quotient are rounded in double (3 * 2^-53
  // relative): the check allows 2^-51 either side, and a scale at least B_j / qmax.
  void check_static_scales(const char* w, const out_vec& scales) const {
    const double qmax = code_qmax(c.q.e4m3), u = unit_roundoff<C>(), cmax = compute_max<C>();
    const int precision = std::is_same<C, double>::value ? 53 : 24;
    for (index_t j = 0; j < c.cols; ++j) {
      const double g = in.has[P_GAMMA] ? std::fabs(in.param[P_GAMMA][std::size_t(j)]) : 1.0;
      const double b = in.has[P_BETA] ? std::fabs(in.param[P_BETA][std::size_t(j)]) : 0.0;
      const double B = g + b, want = B * (1 + std::ldexp(1.0, -(precision - 6))) / qmax;
      const double s = scales.v[std::size_t(j)];
      bool ok;
      if (std::isnan(B)) ok = std::isnan(s);
      else if (want > cmax * (1 + 0x1p-50)) ok = s == HUGE_VAL;
      else if (want >= cmax * (1 - 0x1p-50)) ok = s >= B / qmax;
      else ok = s >= B / qmax && s >= want * (1 - 0x1p-51) && s <= want * (1 + 2 * u) * (1 + 0x1p-51) + subnormal_spacing<C>();
      if (!ok)
        finding("%sstatic_scales()[%lld] = %.9g for |gamma| + |beta| = %.17g: the documented scale is %.17g rounded up",
                w, (long long)j, s, B, want);
    }
  }

  // Float and double storage: forward()'s y is the compute-type y itself, so
  // the codes and the per-row scale must be exactly the documented
  // quantization of it (docs/quantize.md: scale = absmax / qmax in C, code =
  // Q(y * (qmax / absmax)), in two exact steps where qmax / absmax
  // overflows; static: code = Q(y / scale_j), 0 where scale_j is not > 0),
  // encoded by the harness's own encoders; NaN codes compare as NaN (the
  // two compiled row functions may propagate different NaN operands).
  void check_quantized_exact(const char* w, const qresult& r) const {
    const bool e4 = c.q.e4m3;
    const C qm = C(code_qmax(e4));
    auto same = [&](std::uint8_t got, std::uint8_t want) {
      return e4 && (want & 0x7f) == 0x7f ? (got & 0x7f) == 0x7f : got == want;
    };
    const index_t n = c.cols;
    for (index_t row = 0; row < c.rows; ++row) {
      if (c.q.scale == scale_kind::per_row) {
        C absmax = C(0);
        bool nan = false;
        for (index_t j = 0; j < n; ++j) {
          const C a = C(std::fabs(r.y.v[std::size_t(row * n + j)]));
          if (a != a) nan = true;
          else if (a > absmax) absmax = a;
        }
        const double s = r.scales.v[std::size_t(row)];
        const C want_s = nan ? std::numeric_limits<C>::quiet_NaN() : C(absmax / qm);
        if (nan ? !std::isnan(s) : std::memcmp(&r.scales.bits[std::size_t(row) * sizeof(C)], &want_s, sizeof(C)) != 0)
          finding("%srow %lld: scale %.9g, but forward()'s y gives absmax / qmax = %.9g", w, (long long)row, s,
                  double(want_s));
        C pre = C(1), inv = qm / absmax;
        if (absmax < qm / std::numeric_limits<C>::max()) {
          pre = C(18446744073709551616.0);
          inv = qm / (absmax * pre);
        }
        for (index_t j = 0; j < n; ++j) {
          const std::size_t i = std::size_t(row * n + j);
          const C y = C(r.y.v[i]);
          const std::uint8_t want =
              nan ? encode_code(NAN, e4) : absmax == C(0) ? 0 : encode_code(double(C(C(y * pre) * inv)), e4);
          if (!same(r.codes[i], want))
            finding("%s[%lld, %lld]: code 0x%02x, but forward()'s y %.9g quantizes to 0x%02x (scale %.9g)", w,
                    (long long)row, (long long)j, unsigned(r.codes[i]), double(y), unsigned(want), s);
        }
      } else {
        for (index_t j = 0; j < n; ++j) {
          const std::size_t i = std::size_t(row * n + j);
          const C y = C(r.y.v[i]), sj = C(r.scales.v[std::size_t(j)]);
          const std::uint8_t want = sj > C(0) ? encode_code(double(C(y / sj)), e4) : 0;
          if (!same(r.codes[i], want))
            finding("%s[%lld, %lld]: code 0x%02x, but forward()'s y %.9g / scale %.9g quantizes to 0x%02x", w,
                    (long long)row, (long long)j, unsigned(r.codes[i]), double(y), double(sj), unsigned(want));
        }
      }
    }
  }

  // cpu against cpu_scalar: the same refusals (checked by the caller), the
  // same NaN scales and NaN codes (outside the documented limits: an infinite
  // input), and dequantized values within the sum of their bounds. Float and
  // double storage are held tighter by check_quantized_exact: each backend's
  // codes are exactly those of its own forward(), whose y the plain forward
  // passes hold within the layer's bound.
  void check_quantized_agree(const qresult& a, const qresult& s) const {
    const std::string pre = label + " / cpu vs cpu_scalar: ";
    const char* w = pre.c_str();
    const bool e4 = c.q.e4m3, per_row = c.q.scale == scale_kind::per_row;
    const index_t n = c.cols;
    auto nan_code = [&](std::uint8_t b) { return e4 && (b & 0x7f) == 0x7f; };
    for (index_t row = 0; row < c.rows; ++row) {
      bool flagged = false, finite_ref = true;
      for (index_t j = 0; j < n; ++j) {
        flagged = flagged || y_flagged(std::size_t(row * n + j));
        finite_ref = finite_ref && std::isfinite(t.y.ref[std::size_t(row * n + j)]);
      }
      if (flagged || in.any_inf) continue;
      if (per_row && std::isnan(a.scales.v[std::size_t(row)]) != std::isnan(s.scales.v[std::size_t(row)]))
        finding("%srow %lld: scale %g vs %g: NaN in one only", w, (long long)row, a.scales.v[std::size_t(row)],
                s.scales.v[std::size_t(row)]);
      for (index_t j = 0; j < n; ++j) {
        const std::size_t i = std::size_t(row * n + j);
        if (nan_code(a.codes[i]) != nan_code(s.codes[i]))
          finding("%s[%lld, %lld]: codes 0x%02x vs 0x%02x: NaN in one only", w, (long long)row, (long long)j,
                  unsigned(a.codes[i]), unsigned(s.codes[i]));
        if (!finite_ref) continue;
        const double sa = per_row ? a.scales.v[std::size_t(row)] : a.scales.v[std::size_t(j)];
        const double ss = per_row ? s.scales.v[std::size_t(row)] : s.scales.v[std::size_t(j)];
        if (!(std::isfinite(sa) && std::isfinite(ss) && sa > 0 && ss > 0)) continue;
        const double qa = code_value(a.codes[i], e4), qs = code_value(s.codes[i], e4);
        const double yr = t.y.ref[i], E = y_bound(i);
        double lim;
        if (per_row) {
          lim = dynamic_code_bound(qa, sa, yr, E, e4) + dynamic_code_bound(qs, ss, yr, E, e4);
        } else {
          // Both clamp y / s, one scale: within the sum of their bounds (in code units, times s).
          lim = 2 * static_code_bound(sa, yr, E, e4) * sa;
        }
        if (!(std::fabs(qa * sa - qs * ss) <= lim))
          finding("%s[%lld, %lld]: %g x %.9g vs %g x %.9g, |diff| %.3g > %.3g", w, (long long)row, (long long)j, qa,
                  sa, qs, ss, std::fabs(qa * sa - qs * ss), lim);
      }
    }
  }

  // The float64 truth of an accepted case, from its inputs as they were.
  void compute_truth() {
    in = read_inputs<T>(c, initial);
    if constexpr (K == layer_kind::dyt) t = truth_dyt<T, C, Policy>(c, in);
    else if constexpr (K == layer_kind::derf) t = truth_squash<erf_spec, K, T, C>(c, in);
    else if constexpr (K == layer_kind::dyisru) t = truth_squash<isru_spec, K, T, C>(c, in);
    else t = truth_norm<T, C>(c, in, K == layer_kind::rms_norm);
  }

  void run_quantized_case(bool verbose) {
    const qresult a = run_quantized<dyt::cpu>();
    const qresult s = run_quantized<dyt::cpu_scalar>();
    if (a.accepted != s.accepted) finding("cpu and cpu_scalar disagree on accepting the call");
    if (verbose) std::fprintf(stderr, "%s: %s\n", a.accepted ? "accepted" : "refused", label.c_str());
    if (!a.accepted) return;
    compute_truth();
    have_truth = true;
    check_quantized("cpu", a);
    check_quantized("cpu_scalar", s);
    check_quantized_agree(a, s);
  }

  void run(reader& rd, std::uint8_t b0) {
    decode<K, T>(rd, c, initial, b0);
    label = c.describe(fmt<T>::name);
    case_description() = label;
    static const bool verbose = std::getenv("DYT_FUZZ_VERBOSE") != nullptr;
    if (verbose) std::fprintf(stderr, "case: %s\n", label.c_str());
    if (c.q.on) {
      run_quantized_case(verbose);
      return;
    }
    const result a = run_backend<dyt::cpu>();
    const result s = run_backend<dyt::cpu_scalar>();
    if (a.accepted != s.accepted) finding("cpu and cpu_scalar disagree on accepting the call");
    if (verbose) std::fprintf(stderr, "%s: %s\n", a.accepted ? "accepted" : "refused", label.c_str());
    if (!a.accepted) return;
    compute_truth();
    if (c.residual && c.backward()) add_residual<C>(t.dx, in.dh);
    have_truth = true;
    check_backend("cpu", a);
    check_backend("cpu_scalar", s);
    if (c.saved_arbitrary) return;
    const std::string pre = label + " / cpu vs cpu_scalar: ";
    if (!c.backward()) {
      check_agree((pre + "y").c_str(), a.canonical.y, s.canonical.y, t.y, true);
      check_agree((pre + "rstd").c_str(), a.primary.rstd, s.primary.rstd, t.rstd, false);
      check_agree((pre + "mean").c_str(), a.primary.mean, s.primary.mean, t.mean, false);
    } else {
      check_agree((pre + "dx").c_str(), a.canonical.dx, s.canonical.dx, t.dx, true);
      for (int i = 0; i < kParams; ++i)
        if (layer_has<K>(i)) check_agree((pre + kGradNames[i]).c_str(), a.canonical.grad[i], s.canonical.grad[i], t.grad[i], true);
    }
  }
};

template <layer_kind K, class T, class Policy>
void run_typed(reader& rd, std::uint8_t b0) {
  case_runner<K, T, Policy> r;
  r.run(rd, b0);
}

// Derf and DyISRU: no tanh policy (the Policy argument is not used).
template <layer_kind K>
void run_squash(reader& rd, std::uint8_t b0) {
  switch (b0 & 3) {
    case 0: run_typed<K, float, dyt::tanh_precise>(rd, b0); break;
    case 1: run_typed<K, double, dyt::tanh_precise>(rd, b0); break;
    case 2: run_typed<K, dyt::bfloat16, dyt::tanh_precise>(rd, b0); break;
    default: run_typed<K, dyt::half, dyt::tanh_precise>(rd, b0); break;
  }
}

template <layer_kind K>
int run(const std::uint8_t* data, std::size_t size) {
  describe_case_on_death();
  reader rd(data, size);
  const std::uint8_t b0 = rd.u8();
  // fuzz_dyt covers the three point-wise layers: byte 0's bits 3-4 pick the squash.
  if constexpr (K == layer_kind::dyt) {
    const int squash = (b0 >> 3) & 3;
    if (squash == 1) {
      run_squash<layer_kind::derf>(rd, b0);
      return 0;
    }
    if (squash == 2) {
      run_squash<layer_kind::dyisru>(rd, b0);
      return 0;
    }
  }
  // The tanh policy only matters to DyT; the norms instantiate one.
  const bool alt = K == layer_kind::dyt && (b0 & 4) != 0;
  switch (b0 & 3) {
    case 0:
      if (alt) run_typed<K, float, dyt::tanh_fast>(rd, b0);
      else run_typed<K, float, dyt::tanh_precise>(rd, b0);
      break;
    case 1: run_typed<K, double, dyt::tanh_precise>(rd, b0); break;
    case 2:
      if (alt) run_typed<K, dyt::bfloat16, dyt::tanh_precise>(rd, b0);
      else run_typed<K, dyt::bfloat16, dyt::tanh_fast>(rd, b0);
      break;
    default:
      if (alt) run_typed<K, dyt::half, dyt::tanh_precise>(rd, b0);
      else run_typed<K, dyt::half, dyt::tanh_fast>(rd, b0);
      break;
  }
  return 0;
}

}  // namespace fz
