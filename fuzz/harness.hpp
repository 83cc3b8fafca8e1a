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
    add_view_runs(runs, a, c.y, sizeof(T));
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
    auto dense = [&](const dyt::rows_view<T>& v) {
      std::vector<T> d(std::size_t(c.rows * c.cols));
      for (index_t r = 0; r < c.rows; ++r)
        for (index_t j = 0; j < c.cols; ++j) d[std::size_t(r * c.cols + j)] = v.data[r * v.row_stride + j];
      return d;
    };
    std::vector<T> params[kParams];
    const T* pp[kParams] = {nullptr, nullptr, nullptr, nullptr};
    for (int i = 0; i < kParams; ++i)
      if (p0.param[i]) {
        params[i].assign(p0.param[i], p0.param[i] + (scalar_param(i) ? 1 : c.cols));
        pp[i] = params[i].data();
      }
    const auto layer = layer_of<K, T, B, Policy>::make(c, pp);
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
          if (layer_has<K>(i) && pp[i]) {
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
  // (backward_residual's and backward()'s), an operation with two NaN operands
  // returns whichever the compiled code passes first (x86), so a NaN's sign
  // and payload need not agree; every other value must.
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

  void run(reader& rd, std::uint8_t b0) {
    decode<K, T>(rd, c, initial, b0);
    label = c.describe(fmt<T>::name);
    case_description() = label;
    static const bool verbose = std::getenv("DYT_FUZZ_VERBOSE") != nullptr;
    if (verbose) std::fprintf(stderr, "case: %s\n", label.c_str());
    const result a = run_backend<dyt::cpu>();
    const result s = run_backend<dyt::cpu_scalar>();
    if (a.accepted != s.accepted) finding("cpu and cpu_scalar disagree on accepting the call");
    if (verbose) std::fprintf(stderr, "%s: %s\n", a.accepted ? "accepted" : "refused", label.c_str());
    if (!a.accepted) return;
    in = read_inputs<T>(c, initial);
    if constexpr (K == layer_kind::dyt) t = truth_dyt<T, C, Policy>(c, in);
    else if constexpr (K == layer_kind::derf) t = truth_squash<erf_spec, K, T, C>(c, in);
    else if constexpr (K == layer_kind::dyisru) t = truth_squash<isru_spec, K, T, C>(c, in);
    else t = truth_norm<T, C>(c, in, K == layer_kind::rms_norm);
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
