// fuzz/run_case.hpp: decoding a case, the float64 truth and its bounds, and
// the checks (a), (b), (c) described at the top of driver.hpp.
#pragma once

#include "driver.hpp"

namespace fz {

// ---- Decoding -------------------------------------------------------------------------
//
// Byte layout (every read past the end gives 0, i.e. the default):
//   0      type (bits 0-1: float, double, bfloat16, half), bit 2: DyT's other tanh policy,
//          bits 3-4 (fuzz_dyt only): the squash: tanh (DyT), erf (Derf), isru (DyISRU), tanh
//   1      pass: bits 0-2 % 5 = forward, forward+stats, backward, backward(saved stats),
//          chunks+reduce; bit 3: its fused residual variant (forward_residual,
//          backward_residual, backward_chunks_residual + reduce_gradients);
//          bit 4: quantized output instead (forward_quantized; bits 0-2 % 5 == 1: saving the
//          norms' statistics, else none), then bit 3: a per-channel scale (point-wise layers;
//          else per-row), bit 5: E4M3 codes (else int8), bit 6: the caller's per-channel scales
//          (drawn, after the special values) instead of static_scales()' into the same array.
//          Byte 7's aliasing then places the codes: own buffer, over x's rows (1, 2), in the
//          gaps between x's rows (3), partially over x (4), statistics over x (5: own buffer),
//          x's base with another stride (6), right after x (7)
//   2      rows: bit 7 set: 1 + (b & 0x7f) (up to 128), else 1 + (b & 7)
//   3-4    cols: bit 15 set: 1 + (v & 0xfff) (up to 4096), else 1 + v % 160
//   5      row pads (2 bits each: x, output, dy) from {0, 1, 5, 16}; bits 6-7: gradient misalignment
//   6      base misalignment in elements (2 bits each: x, output, dy, parameters)
//   7      aliasing: bits 0-2 = none, output == input, dx == x, interleaved rows, partial overlap,
//          a gradient over its parameter (or statistics over x), same base with another
//          stride, output right after its input;
//          bits 3-5, residual passes: where residual (forward) or dh (backward) lies: its own
//          buffer, == the output, == x, interleaved with x, partially over x, right after x,
//          x's base with another stride, == dy (backward) or right after the output (forward);
//          bits 6-7: its row pad from {0, 1, 5, 16}
//   8      parameters: bit 1 no gamma, bit 2 no beta, bit 3 gamma_form::one_plus
//   9      bit 0/1/2: no dalpha/dgamma/dbeta; bit 3 accumulate; bit 4/5: no mean/rstd
//          (Derf: bit 4 no dshift); bit 6 saved statistics are arbitrary values; bit 7 the
//          chunk API takes saved statistics
//   10     eps: % 8 = default, 0, 1e-12, 1e-3, 1, 100, raw double (8 more bytes), 2^(int8)
//   11     alpha: % 8 = model, 0, -0.7, special (kind byte + 8 raw bytes), 2^(int8/4), -model;
//          bits 3-4, Derf's shift: model ([-0.5, 0.5]), 0, +-2^[-10, 30), a special value
//   12     chunks: bits 0-3 plan chunks (0: default_chunks), bits 4-5 ranges - 1, bit 6 reversed
//   13     bit 7 set: inject the argument error (b & 0x7f) % inj_count
//   14-17  seed of the value generator
//   18-23  distributions of x, dy, gamma, beta, residual or dh, prior gradients: % 8 = model,
//          scaled, constant rows, offset rows, wild (every magnitude of T), zeros, huge, quarter grid
//   24-29  their exponents (int8)
//   30     number of special values (% 17), then per value: target (% 8: x, dy, gamma, beta,
//          prior gradients, alpha, residual or dh, shift), position (u16), kind
//          (fuzz_support.hpp special_value), 8 raw bytes
// (Seeds written before the residual passes, Derf/DyISRU and quantized output decode as they did:
// byte 1 bit 4 was 0 in all of them and the new injected errors are numbered after the old ones.)

template <class T>
double draw(prng& g, std::uint8_t dist, std::int8_t exponent, int tensor, layer_kind kind, bool one_plus,
            double row_a, double row_b) {
  const int e = int(exponent) % 41;  // [-40, 40]
  switch (dist % 8) {
    case 0:  // the tests' distributions (tests/support.hpp)
      switch (tensor) {
        case 0:
          if (kind == layer_kind::dyt || kind == layer_kind::derf || kind == layer_kind::dyisru) return 4 * g.sym();
          if (kind == layer_kind::layer_norm) return row_a + row_b * g.sym();
          return row_b * g.sym();
        case 1: return g.sym();
        case 2: {
          if (one_plus) return g.range(-0.5, 0.5);
          const double m = g.range(0.5, 1.5);
          return g.chance(0.125) ? -m : m;
        }
        case 3: return g.range(-0.25, 0.25);
        default: return g.sym();
      }
    case 1: return g.sym() * std::ldexp(1.0, e);
    case 2: return row_a;  // the row's (or array's) one value
    case 3: return row_a + row_b * g.sym();
    case 4: {
      const int lo = fmt<T>::min_exp - fmt<T>::precision, hi = fmt<T>::max_exp - 1;
      const double m = std::ldexp(g.range(1, 2), lo + int(g.below(hi - lo + 1)));
      return g.chance(0.5) ? -m : m;
    }
    case 5: return 0.0;
    case 6: {
      const int span = fmt<T>::max_exp - 41;
      const double m = std::ldexp(g.range(1, 2), 40 + int((unsigned(exponent) & 0x7fu) % unsigned(span)));
      return g.chance(0.5) ? -m : m;
    }
    default: return double(int(g.below(65)) - 32) / 4;
  }
}

// Per-row constants of a distribution: (a, b) for model rows (offset, spread),
// constant rows (value) and offset rows (mean, spread).
inline void row_constants(prng& g, std::uint8_t dist, std::int8_t exponent, double& a, double& b) {
  const int e = int(exponent) % 41;
  switch (dist % 8) {
    case 0:
      b = g.range(0.5, 2);
      a = g.sym() * b;
      break;
    case 2:
      a = g.sym() * std::ldexp(1.0, e);
      b = 0;
      break;
    case 3:
      a = (g.chance(0.5) ? -1 : 1) * g.range(1, 2) * std::ldexp(1.0, e);
      b = std::ldexp(1.0, e - 8 - int(unsigned(exponent) & 15u));
      break;
    default: a = b = 0;
  }
}

inline index_t span_of(const view_cfg& v) { return (v.rows - 1) * v.stride + v.cols; }

// The quantized pass's injected errors: a null, misshapen or too narrowly
// strided codes view, a null scale array, or one over x, a parameter, the
// codes or the statistics. A scale array placed over another buffer always
// fits that buffer's slot (else it stays in its own), so an accepted call
// (an input over an input, or over an absent parameter) reads and writes
// only slots it was given. static_scales() takes no x: its array over x
// would be accepted and change x under the forward that follows, so there
// it goes over a parameter instead.
template <class C>
void inject_quantized(case_cfg& c, const arena& a, prng& g, std::size_t es) {
  quant_cfg& q = c.q;
  // Places the array in `slot` at the first C-aligned byte at or after `from`, if it fits.
  auto place = [&](int slot, std::size_t from) {
    if (slot < 0) return false;
    const arena::slot& s = a.at(slot);
    const std::size_t need = std::size_t(q.n) * sizeof(C);
    const std::size_t off = (s.offset + from + alignof(C) - 1) / alignof(C) * alignof(C) - s.offset;
    if (off + need > s.bytes) return false;
    q.slot = slot;
    q.byte_off = off;
    q.own = false;
    return true;
  };
  auto over_x = [&] {
    if (q.scale == scale_kind::from_static_scales) return false;
    const std::size_t x_bytes = std::size_t(span_of(c.x)) * es;
    return place(c.x.slot, std::size_t(c.x.off) * es + std::size_t(g.below(index_t(x_bytes)))) ||
           place(c.x.slot, std::size_t(c.x.off) * es);
  };
  auto over_param = [&] {
    for (int i : {P_GAMMA, P_BETA, P_ALPHA})
      if (c.param[i].present && place(c.param[i].slot, std::size_t(c.param[i].off) * es)) return true;
    return false;
  };
  switch (c.inject) {
    case inj_codes_null: q.codes.null = true; break;
    case inj_codes_rows: q.codes.rows = c.rows + 1; break;
    case inj_codes_cols: q.codes.cols = c.cols + 1; break;
    case inj_codes_stride_small: q.codes.stride = c.cols - 1; break;
    case inj_scale_null: q.null = true; break;
    case inj_scale_over_x:
      if (!over_x()) over_param();
      break;
    case inj_scale_over_param:
      if (!over_param()) over_x();
      break;
    case inj_scale_over_codes:
      if (!place(q.codes.slot, std::size_t(q.codes.off) + std::size_t(g.below(q.codes.cols)))) over_x();
      break;
    case inj_scale_over_stats:
      if (!place(c.rstd.slot, std::size_t(c.rstd.off) * sizeof(C))) over_x();
      break;
    default: break;
  }
}

template <layer_kind K, class T>
void decode(reader& in, case_cfg& c, arena& a, std::uint8_t b0) {
  using C = dyt::compute_t<T>;
  c.kind = K;
  c.type = b0 & 3;
  // tanh_fast in double lanes is float-accurate only; the other squashes have no policy.
  c.alt_policy = K == layer_kind::dyt && (b0 & 4) != 0 && !std::is_same<T, double>::value;
  const std::uint8_t pb = in.u8();
  c.pass = pass_kind((pb & 7) % 5);
  c.residual = (pb & 8) != 0;
  c.q.on = (pb & 16) != 0;
  if (c.q.on) {
    c.residual = false;
    c.pass = (pb & 7) % 5 == 1 ? pass_kind::forward_stats : pass_kind::forward;
    c.q.e4m3 = (pb & 32) != 0;
    if (pointwise<K> && (pb & 8)) c.q.scale = (pb & 64) ? scale_kind::per_channel : scale_kind::from_static_scales;
  }
  if (pointwise<K> && c.pass == pass_kind::forward_stats) c.pass = pass_kind::forward;
  if (pointwise<K> && c.pass == pass_kind::backward_saved) c.pass = pass_kind::backward;
  const std::uint8_t rb = in.u8();
  c.rows = (rb & 0x80) ? 1 + (rb & 0x7f) : 1 + (rb & 7);
  const std::uint16_t cb = in.u16();
  c.cols = (cb & 0x8000) ? 1 + (cb & 0x0fff) : 1 + cb % 160;
  while (c.rows > 1 && c.rows * c.cols > 40000) c.rows /= 2;
  c.layer_cols = c.cols;
  const std::uint8_t pads = in.u8(), mis = in.u8();
  static const index_t kPads[4] = {0, 1, 5, 16};
  const std::uint8_t alias_byte = in.u8();
  c.alias = alias_byte & 7;
  c.res_alias = c.residual ? (alias_byte >> 3) & 7 : 0;
  const std::uint8_t hb = in.u8(), wb = in.u8();
  c.has[P_ALPHA] = pointwise<K>;
  c.has[P_GAMMA] = !(hb & 2);
  c.has[P_BETA] = K != layer_kind::rms_norm && !(hb & 4);
  c.has[P_SHIFT] = K == layer_kind::derf;
  c.one_plus = K == layer_kind::rms_norm && (hb & 8) && c.has[P_GAMMA];
  for (int i = 0; i < 3; ++i) c.want[i] = layer_has<K>(i) && c.has[i] && !((wb >> i) & 1);
  c.want[P_SHIFT] = c.has[P_SHIFT] && !(wb & 16);
  c.accumulate = (wb & 8) != 0;
  const bool want_mean = K == layer_kind::layer_norm && !(wb & 16), want_rstd = !pointwise<K> && !(wb & 32);
  c.saved_arbitrary = (wb & 64) != 0;
  const bool chunks_saved = (wb & 128) != 0;

  const std::uint8_t eb = in.u8();
  c.eps = K == layer_kind::layer_norm ? 1e-5 : 1e-6;
  switch (eb % 8) {
    case 1: c.eps = 0.0; break;
    case 2: c.eps = 1e-12; break;
    case 3: c.eps = 1e-3; break;
    case 4: c.eps = 1.0; break;
    case 5: c.eps = 100.0; break;
    case 6: {
      const std::uint64_t bits = in.u64();
      std::memcpy(&c.eps, &bits, 8);
      break;
    }
    case 7: c.eps = std::ldexp(1.0, std::int8_t(in.u8())); break;
    default: break;
  }
  const std::uint8_t ab = in.u8();
  std::uint8_t alpha_kind = 0;
  std::uint64_t alpha_raw = 0;
  std::int8_t alpha_exp = 0;
  if (ab % 8 == 3) {
    alpha_kind = in.u8();
    alpha_raw = in.u64();
  } else if (ab % 8 == 4) {
    alpha_exp = std::int8_t(in.u8());
  }
  const std::uint8_t kb = in.u8();
  const std::uint8_t ib = in.u8();
  c.inject = (ib & 0x80) ? (ib & 0x7f) % inj_count : 0;
  prng g{in.u32()};
  std::uint8_t dists[6];
  std::int8_t exps[6];
  for (auto& d : dists) d = in.u8();
  for (auto& e : exps) e = std::int8_t(in.u8());
  for (int i = 0; i < 6; ++i) c.dist[i] = dists[i] % 8;

  // -- Views: x (and y) for forward passes, x, dy and dx for backward ones.
  const bool bwd = c.backward();
  auto init_view = [&](view_cfg& v, index_t pad) {
    v.rows = c.rows;
    v.cols = c.cols;
    v.stride = c.cols + pad;
  };
  init_view(c.x, kPads[pads & 3]);
  init_view(bwd ? c.dx : c.y, kPads[(pads >> 2) & 3]);
  if (bwd) init_view(c.dy, kPads[(pads >> 4) & 3]);
  if (c.residual) init_view(c.r, kPads[(alias_byte >> 6) & 3]);
  view_cfg& out = bwd ? c.dx : c.y;
  view_cfg& src = !bwd ? c.x : (c.alias == 2 ? c.x : c.dy);
  if (c.alias == 3) src.stride = std::max(src.stride, 2 * c.cols);
  if (c.res_alias == 3) c.x.stride = std::max(c.x.stride, 2 * c.cols);
  const std::size_t es = sizeof(T);
  auto add_view_slot = [&](view_cfg& v, int misalign) {
    const index_t span = span_of(v);
    // Room for views placed inside this one's slot (at most two spans in, and
    // one span long, plus a stride and rows for the injected shapes).
    const index_t capacity = 3 * span + v.stride + v.cols + 2 * v.rows + 8;
    v.slot = a.add(std::size_t(capacity) * es, std::size_t(misalign) * es, 16 + std::size_t(g.below(4)) * es);
    v.off = 0;
  };
  add_view_slot(c.x, mis & 3);
  if (bwd) add_view_slot(c.dy, (mis >> 4) & 3);
  switch (c.alias) {
    case 1:
    case 2:
      out = src;
      break;
    case 3:
      out = src;
      out.off = src.off + c.cols;
      break;
    case 4:
      out = src;
      out.off = src.off + 1 + g.below(span_of(src));
      break;
    case 6:
      out = src;
      out.stride = src.stride + 1;
      break;
    case 7:
      out = src;
      out.off = src.off + span_of(src);
      break;
    default:
      add_view_slot(out, (mis >> 2) & 3);
      break;
  }
  // The residual passes' residual (forward) or dh (backward), placed against x or the output.
  if (c.residual) {
    view_cfg& res = c.r;
    switch (c.res_alias) {
      case 1: res = out; break;
      case 2: res = c.x; break;
      case 3:
        res = c.x;
        res.off = c.x.off + c.cols;
        break;
      case 4:
        res = c.x;
        res.off = c.x.off + 1 + g.below(span_of(c.x));
        break;
      case 5:
        res = c.x;
        res.off = c.x.off + span_of(c.x);
        break;
      case 6:
        res = c.x;
        res.stride = c.x.stride + 1;
        break;
      case 7:
        if (bwd) {
          res = c.dy;
        } else {
          res = out;
          res.off = out.off + span_of(out);
        }
        break;
      default: add_view_slot(res, int(g.below(4))); break;
    }
  }

  // The quantized pass's codes (bytes; placed by the aliasing mode against x).
  if (c.q.on) {
    view_cfg& q = c.q.codes;
    q.rows = c.rows;
    q.cols = c.cols;
    q.stride = c.cols;
    const index_t x_bytes = span_of(c.x) * index_t(es);
    switch (c.alias) {
      case 1:
      case 2:  // over x's rows
      case 3:  // in the gaps between x's rows (x's stride >= 2 cols above)
        q.slot = c.x.slot;
        q.off = c.alias == 3 ? c.cols * index_t(es) : 0;
        q.stride = c.x.stride * index_t(es);
        break;
      case 4:
        q.slot = c.x.slot;
        q.off = 1 + g.below(x_bytes - 1);
        break;
      case 6:
        q.slot = c.x.slot;
        q.stride = c.cols + 1;
        break;
      case 7:
        q.slot = c.x.slot;
        q.off = x_bytes;
        break;
      default: {
        q.stride = c.cols + kPads[(pads >> 2) & 3];
        // Room for the injected shapes and for a scale array placed inside (C values).
        const index_t capacity = 3 * span_of(q) + q.stride + q.cols + 2 * q.rows + 8 * (c.cols + c.rows) + 64;
        q.slot = a.add(std::size_t(capacity), std::size_t((mis >> 2) & 3), 16 + std::size_t(g.below(4)));
        q.off = 0;
        break;
      }
    }
  }

  // -- Parameters, gradients, statistics (arrays).
  const index_t n_alloc = c.cols + 2;
  const int pmis = (mis >> 6) & 3, gmis = (pads >> 6) & 3;
  for (int i = 0; i < kParams; ++i) {
    const index_t n = scalar_param(i) ? 1 : n_alloc;
    c.param[i].slot = a.add(std::size_t(n + 8) * es, std::size_t(pmis) * es, 16);
    c.param[i].n = n;
    c.param[i].present = c.has[i];
    c.grad[i].slot = a.add(std::size_t(n + 8) * es, std::size_t(gmis) * es, 16);
    c.grad[i].n = n;
    c.grad[i].present = c.want[i];
  }
  const bool stats_pass = c.pass == pass_kind::forward_stats || c.pass == pass_kind::backward_saved ||
                          (c.pass == pass_kind::chunks && chunks_saved);
  for (array_cfg* s : {&c.mean, &c.rstd}) {
    s->slot = a.add(std::size_t(c.rows + 8) * sizeof(C), std::size_t(g.below(3)) * sizeof(C), 16);
    s->n = c.rows;
  }
  if (c.q.on) {  // the scale array: x.rows values (per row) or cols (per channel), in its own slot
    c.q.n = c.q.scale == scale_kind::per_row ? c.rows : c.cols;
    c.q.slot = a.add(std::size_t(c.q.n + 8) * sizeof(C), std::size_t(g.below(3)) * sizeof(C), 16);
  }
  c.mean.present = stats_pass && want_mean;
  c.rstd.present = stats_pass && want_rstd;
  if (K == layer_kind::layer_norm && c.pass != pass_kind::forward_stats && c.mean.present != c.rstd.present)
    c.mean.present = c.rstd.present = false;  // backward takes both or neither (an injection breaks this)
  if (!stats_pass) c.saved_arbitrary = false;
  if (c.pass == pass_kind::forward_stats) c.saved_arbitrary = false;

  if (c.alias == 5) {  // a gradient over its parameter, or statistics over x
    if (bwd && c.want[P_GAMMA]) {
      c.grad[P_GAMMA].slot = c.param[P_GAMMA].slot;
      c.grad[P_GAMMA].off = g.below(c.cols);
    } else if (c.rstd.present && c.pass == pass_kind::forward_stats) {
      // rstd (C), an output, inside x's slot, at an offset aligned for C. (In a
      // backward pass saved statistics are inputs, which may overlap x; the
      // harness's own fill_saved would then overwrite x, so not there.)
      const std::size_t base = a.at(c.x.slot).offset;
      const std::size_t want = base + std::size_t(g.below(span_of(c.x))) * es;
      const std::size_t aligned = (want + alignof(C) - 1) / alignof(C) * alignof(C);
      const std::size_t limit = base + a.at(c.x.slot).bytes;
      if (aligned + std::size_t(c.rows) * sizeof(C) <= limit) {
        // Express it as an offset from the rstd slot's own base is impossible: use x's slot.
        c.rstd.slot = c.x.slot;
        c.rstd.off = index_t((aligned - base) / sizeof(C));
        if ((aligned - base) % sizeof(C) != 0) c.rstd.slot = -2;  // not expressible: drop (below)
      }
      if (c.rstd.slot == -2) c.rstd.present = false;
    }
  }

  // -- The chunk API.
  if (c.pass == pass_kind::chunks) {
    c.plan_rows = c.rows;
    c.plan_chunks = (kb & 15) ? std::min<index_t>(c.rows, kb & 15) : dyt::default_chunks(c.rows);
    const index_t parts = 1 + ((kb >> 4) & 3);
    std::vector<index_t> cuts{0, c.plan_chunks};
    for (index_t i = 1; i < parts; ++i) cuts.push_back(g.below(c.plan_chunks + 1));
    std::sort(cuts.begin(), cuts.end());
    for (std::size_t i = 0; i + 1 < cuts.size(); ++i) c.ranges.push_back({cuts[i], cuts[i + 1]});
    if (kb & 64) std::reverse(c.ranges.begin(), c.ranges.end());
    const std::size_t needed = workspace_needed<K, C>(c, c.rows + 1);
    c.ws_slot = a.add(needed + 128, 0, 16);
    c.ws_size = workspace_needed<K, C>(c, c.plan_chunks);
  }

  // -- Injected argument errors (applied to the layout; the arena stays as sized above).
  view_cfg& o = bwd ? c.dx : c.y;
  switch (c.inject) {
    case inj_x_null: c.x.null = true; break;
    case inj_out_null: o.null = true; break;
    case inj_dy_null: c.dy.null = true; break;
    case inj_x_rows0: c.x.rows = 0; break;
    case inj_x_rows_neg: c.x.rows = -1; break;
    case inj_x_cols0: c.x.cols = 0; break;
    case inj_x_stride_small: c.x.stride = c.x.cols - 1; break;
    case inj_out_rows: o.rows = c.rows + 1; break;
    case inj_out_cols:
      o.cols = c.cols + 1;
      break;
    case inj_layer_cols_more: c.layer_cols = c.cols + 1; break;
    case inj_layer_cols0: c.layer_cols = 0; break;
    case inj_layer_cols_neg: c.layer_cols = -3; break;
    case inj_eps_nan: c.eps = std::numeric_limits<double>::quiet_NaN(); break;
    case inj_eps_neg: c.eps = -1e-3; break;
    case inj_eps_inf: c.eps = std::numeric_limits<double>::infinity(); break;
    case inj_eps_neg_zero: c.eps = -0.0; break;
    case inj_param_null:
      if (pointwise<K>) c.param[P_ALPHA].present = false;
      if (K == layer_kind::rms_norm) {
        c.one_plus = true;
        c.param[P_GAMMA].present = false;
      }
      if (K == layer_kind::layer_norm) c.param[P_GAMMA].present = false;
      break;
    case inj_grad_without_param:
      if (bwd || c.pass == pass_kind::chunks) {
        c.param[P_GAMMA].present = false;
        c.grad[P_GAMMA].present = true;
        c.one_plus = false;
      }
      break;
    case inj_stats_half:
      if (K == layer_kind::layer_norm) {
        c.mean.present = true;
        c.rstd.present = false;
      } else if (K == layer_kind::rms_norm) {
        c.mean.present = true;
      }
      if (!stats_pass && !pointwise<K>) {
        c.mean.present = c.rstd.present = false;
      }
      break;
    case inj_ws_small:
      if (c.ws_size > 0) c.ws_size -= 1;
      break;
    case inj_ws_misaligned: c.ws_off = alignof(C) / 2; break;
    case inj_ws_null: c.ws_null = true; break;
    case inj_plan_rows: c.plan_rows = c.rows + 1; break;
    case inj_plan_chunks0: c.plan_chunks = 0; break;
    case inj_plan_chunks_more:
      c.plan_chunks = c.rows + 1;
      c.ws_size = workspace_needed<K, C>(c, c.plan_chunks);
      break;
    case inj_range_reversed:
      if (c.pass == pass_kind::chunks) c.ranges = {{1, 0}};
      break;
    case inj_range_past:
      if (c.pass == pass_kind::chunks) c.ranges = {{0, c.plan_chunks + 1}};
      break;
    case inj_huge_rows:
      for (view_cfg* v : {&c.x, &c.y, &c.dy, &c.dx}) v->rows = PTRDIFF_MAX / 4;
      break;
    case inj_huge_stride: c.x.stride = PTRDIFF_MAX / 2; break;
    case inj_huge_cols:
      for (view_cfg* v : {&c.x, &c.y, &c.dy, &c.dx}) v->cols = v->stride = PTRDIFF_MAX / index_t(es) + 1;
      c.layer_cols = PTRDIFF_MAX / index_t(es) + 1;
      break;
    case inj_dy_shape:
      if (c.cols > 1) c.dy.cols = c.cols - 1;
      break;
    case inj_shift_null: c.param[P_SHIFT].present = false; break;
    case inj_res_null: c.r.null = true; break;
    case inj_res_rows: c.r.rows = c.rows + 1; break;
    case inj_res_cols: c.r.cols = c.cols + 1; break;
    case inj_res_stride_small: c.r.stride = c.cols - 1; break;
    default: break;
  }
  if (c.q.on) inject_quantized<C>(c, a, g, es);

  // -- Values.
  a.build<T>();
  const bool one_plus = c.one_plus;
  auto put = [&](int slot, index_t idx, T v) { reinterpret_cast<T*>(a.slot_ptr(slot))[idx] = v; };
  auto fill_view = [&](const view_cfg& v0, int tensor) {
    // Values go where the view was laid out, before any injected change of its shape.
    view_cfg v = v0;
    v.rows = c.rows;
    v.cols = c.cols;
    if (v.stride < c.cols || v.stride > (index_t(1) << 20)) v.stride = c.cols;
    if (v.slot < 0) return;
    for (index_t r = 0; r < v.rows; ++r) {
      double ra = 0, rb2 = 0;
      row_constants(g, dists[tensor], exps[tensor], ra, rb2);
      for (index_t j = 0; j < v.cols; ++j)
        put(v.slot, v.off + r * v.stride + j,
            from_d<T>(draw<T>(g, dists[tensor], exps[tensor], tensor, K, one_plus, ra, rb2)));
    }
  };
  fill_view(c.x, 0);
  if (bwd) fill_view(c.dy, 1);
  if (c.residual) fill_view(c.r, 4);
  for (int i = 1; i < 3; ++i) {
    double ra = 0, rb2 = 0;
    row_constants(g, dists[i + 1], exps[i + 1], ra, rb2);
    for (index_t j = 0; j < n_alloc; ++j)
      put(c.param[i].slot, j, from_d<T>(draw<T>(g, dists[i + 1], exps[i + 1], i + 1, K, one_plus, ra, rb2)));
  }
  {
    T alpha = from_d<T>(g.range(0.2, 1.2));
    switch (ab % 8) {
      case 1: alpha = from_d<T>(0.0); break;
      case 2: alpha = from_d<T>(-0.7); break;
      case 3: alpha = special_value<T>(alpha_kind, alpha_raw, g); break;
      case 4: alpha = from_d<T>(std::ldexp(1.0, alpha_exp / 4)); break;
      case 5: alpha = from_d<T>(-g.range(0.2, 1.2)); break;
      default: break;
    }
    put(c.param[P_ALPHA].slot, 0, alpha);
  }
  if (K == layer_kind::derf) {
    T shift = from_d<T>(g.range(-0.5, 0.5));
    switch ((ab >> 3) & 3) {
      case 1: shift = from_d<T>(0.0); break;
      case 2: shift = from_d<T>(g.sym() * std::ldexp(1.0, int(g.below(40)) - 10)); break;
      case 3: shift = special_value<T>(std::uint8_t(g.next()), g.next(), g); break;
      default: break;
    }
    put(c.param[P_SHIFT].slot, 0, shift);
  }
  if (c.accumulate) {
    double ra = 0, rb2 = 0;
    row_constants(g, dists[5], exps[5], ra, rb2);
    for (int i = 0; i < kParams; ++i)
      for (index_t j = 0; j < c.grad[i].n; ++j)
        if (c.grad[i].slot != c.param[i].slot)
          put(c.grad[i].slot, j, from_d<T>(draw<T>(g, dists[5], exps[5], 5, K, one_plus, ra, rb2)));
  }
  if (c.saved_arbitrary) {
    for (const array_cfg* s : {&c.mean, &c.rstd}) {
      if (s->slot < 0 || s->slot == c.x.slot) continue;
      C* p = reinterpret_cast<C*>(a.slot_ptr(s->slot));
      for (index_t r = 0; r < c.rows; ++r) {
        const std::uint8_t k = std::uint8_t(g.next());
        p[r] = k < 200 ? C(g.range(0, 4) * std::ldexp(1.0, int(k % 60) - 30)) : C(to_d(special_value<float>(k, g.next(), g)));
      }
    }
  }
  c.specials = in.u8() % 17;
  for (int s = 0; s < c.specials; ++s) {
    const std::uint8_t target = in.u8() % 8;
    const std::uint16_t pos = in.u16();
    const std::uint8_t kind = in.u8();
    const T v = special_value<T>(kind, in.u64(), g);
    switch (target) {
      case 0:
      case 1:
      case 6: {
        const view_cfg& v0 = target == 0 ? c.x : target == 1 ? c.dy : c.r;
        if (v0.slot < 0 || (target == 1 && !bwd) || (target == 6 && !c.residual)) break;
        const index_t r = index_t(pos) % c.rows, j = index_t(pos / 7) % c.cols;
        const index_t stride = v0.stride < c.cols || v0.stride > (index_t(1) << 20) ? c.cols : v0.stride;
        put(v0.slot, v0.off + r * stride + j, v);
        break;
      }
      case 2:
      case 3: put(c.param[target - 1].slot, index_t(pos) % n_alloc, v); break;
      case 4:
        if (c.accumulate) {
          const int i = pos % 3;
          if (c.grad[i].slot != c.param[i].slot) put(c.grad[i].slot, index_t(pos / 3) % c.grad[i].n, v);
        }
        break;
      case 7: put(c.param[P_SHIFT].slot, 0, v); break;
      default: put(c.param[P_ALPHA].slot, 0, v); break;
    }
  }
  // The caller's per-channel scales (in their own slot; one over another
  // buffer is that buffer's bytes): around the never-clipping B_j / qmax
  // (B_j = |gamma_j| + |beta_j|) times 2^[-4, 4], so that some values
  // saturate, and 0, negative, NaN, +-Inf, subnormal and arbitrary ones.
  if (c.q.on && c.q.scale == scale_kind::per_channel && c.q.own && !c.q.null) {
    const double qmax = c.q.e4m3 ? 448 : 127;
    C* sc = reinterpret_cast<C*>(a.slot_ptr(c.q.slot) + c.q.byte_off);
    const T* gp = reinterpret_cast<const T*>(a.slot_ptr(c.param[P_GAMMA].slot));
    const T* bp = reinterpret_cast<const T*>(a.slot_ptr(c.param[P_BETA].slot));
    for (index_t j = 0; j < c.q.n; ++j) {
      const double gj = c.param[P_GAMMA].present ? std::fabs(to_d(gp[j])) : 1.0;
      const double bj = c.param[P_BETA].present ? std::fabs(to_d(bp[j])) : 0.0;
      const double b = (gj + bj) / qmax;
      double v = 0;
      const std::uint64_t k = g.next() % 16;
      if (k < 10) v = b * std::ldexp(1.0, int(g.below(9)) - 4) * g.range(0.75, 1.25);
      else if (k == 10) v = 0;
      else if (k == 11) v = -b;
      else if (k == 12) v = to_d(special_value<C>(std::uint8_t(g.next()), g.next(), g));
      else if (k == 13) v = std::ldexp(g.range(1, 2), int(g.below(100)) - 60);
      else if (k == 14) v = std::numeric_limits<double>::infinity();
      else v = b;
      sc[j] = std::fabs(v) <= compute_max<C>() || !std::isfinite(v) ? C(v) : C(std::copysign(HUGE_VAL, v));
    }
  }
}

// ---- Outputs ------------------------------------------------------------------------------

struct out_vec {
  bool present = false;
  std::vector<double> v;
  std::vector<unsigned char> bits;
};

template <class U>
out_vec read_view(const dyt::rows_view<U>& view) {
  out_vec o;
  o.present = true;
  for (index_t r = 0; r < view.rows; ++r)
    for (index_t j = 0; j < view.cols; ++j) {
      const U& e = view.data[r * view.row_stride + j];
      o.v.push_back(to_d(e));
      const auto* b = reinterpret_cast<const unsigned char*>(&e);
      o.bits.insert(o.bits.end(), b, b + sizeof(U));
    }
  return o;
}
template <class U>
out_vec read_array(const U* p, index_t n) {
  if (!p) return {};
  return read_view(dyt::rows_view<const U>(p, 1, n));
}

inline bool same_bits(const out_vec& a, const out_vec& b) { return a.present == b.present && a.bits == b.bits; }

inline std::size_t first_bit_difference(const out_vec& a, const out_vec& b) {
  const std::size_t e = a.v.empty() ? 1 : a.bits.size() / a.v.size();
  for (std::size_t i = 0; i < std::min(a.bits.size(), b.bits.size()); ++i)
    if (a.bits[i] != b.bits[i]) return i / e;
  return std::min(a.v.size(), b.v.size());
}

// ---- Quantized codes, restated from docs/quantize.md (independent of ops/quantize.hpp) -------

inline double code_qmax(bool e4m3) { return e4m3 ? 448 : 127; }

// A code's value: int8 two's complement; E4M3 (OCP E4M3FN): bias 7, no
// infinities, S.1111.111 NaN, subnormals m 2^-9.
inline double code_value(std::uint8_t b, bool e4m3) {
  if (!e4m3) return double(std::int8_t(b));
  if ((b & 0x7f) == 0x7f) return std::numeric_limits<double>::quiet_NaN();
  const int e = (b >> 3) & 15, m = b & 7;
  const double mag = e == 0 ? std::ldexp(m, -9) : std::ldexp(8 + m, e - 10);
  return (b & 0x80) ? -mag : mag;
}

// Half the spacing of the codes at magnitude v (<= qmax): 0.5 for int8,
// 2^(e - 4) for E4M3 in binade e (2^-10 below the normal range): the
// format's half-ulp (tests/test_quantize.cpp, half_step).
inline double code_half_step(double v, bool e4m3) {
  if (!e4m3) return 0.5;
  const double a = std::min(std::fabs(v), 448.0);
  const int e = a > 0 ? std::max(std::ilogb(a), -6) : -6;
  return std::ldexp(1.0, e - 4);
}

// The encoders: nearest, ties to even, saturating to +-qmax (int8 never
// -128); NaN is 0 in int8 and S.1111.111 in E4M3. (E4M3: |v| / step is
// exact, below 16, and rounds to the even mantissa.)
inline std::uint8_t encode_code(double v, bool e4m3) {
  if (!e4m3) {
    if (std::isnan(v)) return 0;
    return std::uint8_t(std::int8_t(std::nearbyint(std::max(-127.0, std::min(127.0, v)))));
  }
  const std::uint8_t sign = std::signbit(v) ? 0x80 : 0;
  if (std::isnan(v)) return std::uint8_t(sign | 0x7f);
  const double a = std::fabs(v);
  if (a >= 448) return std::uint8_t(sign | 0x7e);
  const int e = a > 0 ? std::max(std::ilogb(a), -6) : -6;
  const double m = std::nearbyint(a / std::ldexp(1.0, e - 3)) * std::ldexp(1.0, e - 3);
  if (m < 0x1p-6) return std::uint8_t(sign | int(m * 512));  // subnormal (or 0)
  const int em = std::ilogb(m);
  return std::uint8_t(sign | ((em + 7) << 3) | (int(std::ldexp(m, 3 - em)) - 8));
}

struct outputs {
  out_vec y, mean, rstd, dx, grad[kParams];
  out_vec h;  // forward_residual: the residual after the call
};

// ---- The truth and its bounds ---------------------------------------------------------------

struct expect {
  std::vector<double> ref, k, scale, extra;
  std::vector<unsigned char> skip, overflow;
  void init(std::size_t n) {
    ref.assign(n, 0);
    k.assign(n, 0);
    scale.assign(n, 0);
    extra.assign(n, 0);
    skip.assign(n, 0);
    overflow.assign(n, 0);
  }
  void set(std::size_t i, double k_, double scale_, double extra_ = 0) {
    k[i] = k_;
    scale[i] = scale_;
    extra[i] = extra_;
  }
};

struct truth {
  expect y, mean, rstd, dx, grad[kParams];
};

// The case's inputs in double (dense), read from the initial arena.
struct inputs {
  index_t rows = 0, cols = 0;
  // x: the layer's input; in a forward_residual pass h = fl(x + residual) (one
  // rounding to T), with x and the residual themselves in x_in and res. dh: a
  // backward_residual pass's dh.
  std::vector<double> x, dy, param[kParams], prior[kParams], x_in, res, dh;
  bool has[kParams] = {false, false, false, false};
  bool finite = true;     // every input value finite
  bool any_inf = false;   // some input value is +-Inf
  // x (h), dy, gain (|gamma|, |1 + gamma| or 1), beta, alpha, prior, residual or dh, shift (finite values)
  double max_abs[8] = {};
};

template <class T>
inputs read_inputs(const case_cfg& c, const arena& a) {
  inputs in;
  in.rows = c.rows;
  in.cols = c.cols;
  auto note = [&](int which, double v) {
    if (!std::isfinite(v)) in.finite = false;
    if (std::isinf(v)) in.any_inf = true;
    else in.max_abs[which] = std::max(in.max_abs[which], std::fabs(v));
  };
  auto read = [&](const view_cfg& v, std::vector<double>& out, int which) {
    for (index_t r = 0; r < c.rows; ++r)
      for (index_t j = 0; j < c.cols; ++j) {
        const double d = to_d(reinterpret_cast<const T*>(a.slot_ptr(v.slot))[v.off + r * v.stride + j]);
        out.push_back(d);
        note(which, d);
      }
  };
  read(c.x, in.x, 0);
  if (c.backward()) read(c.dy, in.dy, 1);
  if (c.residual) read(c.r, c.backward() ? in.dh : in.res, 6);
  if (c.residual && !c.backward()) {
    // h, rounded once to T. The library adds in the compute type and stores:
    // for 16-bit T a float sum rounded again, which gives the same value (a
    // second rounding of a sum is innocuous when the wider format has at
    // least 2p + 2 bits: 24 >= 2 * 11 + 2). from_d rounds double -> float ->
    // T, innocuous the same way (53 >= 2 * 24 + 2).
    in.x_in = in.x;
    in.max_abs[0] = 0;
    for (std::size_t i = 0; i < in.x.size(); ++i) {
      in.x[i] = to_d(from_d<T>(in.x_in[i] + in.res[i]));
      note(0, in.x[i]);
    }
  }
  for (int i = 0; i < kParams; ++i) {
    in.has[i] = c.param[i].present;
    if (!in.has[i]) continue;
    const T* p = reinterpret_cast<const T*>(a.slot_ptr(c.param[i].slot)) + c.param[i].off;
    const index_t n = scalar_param(i) ? 1 : c.cols;
    for (index_t j = 0; j < n; ++j) {
      const double d = to_d(p[j]);
      in.param[i].push_back(d);
      if (i == P_GAMMA) note(2, c.one_plus ? 1 + d : d);
      if (i == P_BETA) note(3, d);
      if (i == P_ALPHA) note(4, d);
      if (i == P_SHIFT) note(7, d);
    }
    if (c.accumulate && c.grad[i].present) {
      const T* q = reinterpret_cast<const T*>(a.slot_ptr(c.grad[i].slot)) + c.grad[i].off;
      for (index_t j = 0; j < n; ++j) {
        in.prior[i].push_back(to_d(q[j]));
        note(5, to_d(q[j]));
      }
    }
  }
  if (!in.has[P_GAMMA]) in.max_abs[2] = 1;
  return in;
}

// Bounds: |got - ref| <= store_error(T) + k (u + 2^-53) scale + extra, with k
// and scale derived in tests/test_forward.cpp and tests/test_backward.cpp (the
// comments there; restated in one line each here). `extra` is what those
// derivations leave out because the tests never reach it: roundings that
// underflow into the compute type's subnormals (an absolute error of at most
// its subnormal spacing, times whatever multiplies it later: `amp`), and an
// rstd so small that it is itself subnormal (sigma > 2^126 in float: relative
// error up to spacing / rstd). Where a derivation's assumptions cannot hold at
// all (documented limits, docs/numerics.md) the element is skipped or marked
// `overflow` (a non-finite result is then accepted).
template <class T, class C, class Policy>
truth truth_dyt(const case_cfg& c, const inputs& in) {
  truth t;
  const index_t rows = c.rows, n = c.cols;
  const double u = unit_roundoff<C>(), tiny = subnormal_spacing<C>(), cmax = compute_max<C>();
  const double p = std::is_same<Policy, dyt::tanh_fast>::value ? 5.7 : 2.2;
  const double alpha = in.param[P_ALPHA][0];
  const double* gamma = in.has[P_GAMMA] ? in.param[P_GAMMA].data() : nullptr;
  const double* beta = in.has[P_BETA] ? in.param[P_BETA].data() : nullptr;
  const dyt::DyT<double, dyt::reference> ref(&alpha, gamma, beta, n);
  const double Mx = in.max_abs[0], Mdy = in.max_abs[1], Mg = in.max_abs[2], Mb = in.max_abs[3],
               Ma = std::fabs(alpha), Mp = in.max_abs[5];
  (void)u;
  if (!c.backward()) {
    t.y.init(std::size_t(rows * n));
    if (!ref.forward({in.x.data(), rows, n}, {t.y.ref.data(), rows, n}).ok()) finding("reference refused");
    const bool ovf = Mg + Mb >= cmax / 4;
    for (index_t r = 0; r < rows; ++r)
      for (index_t j = 0; j < n; ++j) {
        const std::size_t i = std::size_t(r * n + j);
        const double th = std::tanh(alpha * in.x[i]);
        const double g = gamma ? std::fabs(gamma[j]) : 1.0, b = beta ? std::fabs(beta[j]) : 0.0;
        // y: k = 2p + 4, scale |gamma t| + |beta| (test_forward.cpp, dyt_truth).
        t.y.set(i, 2 * p + 4, g * std::fabs(th) + b, 16 * tiny * (1 + g));
        t.y.overflow[i] = ovf;
      }
    return t;
  }
  t.dx.init(std::size_t(rows * n));
  for (int i = 0; i < kParams; ++i) t.grad[i].init(scalar_param(i) ? 1 : std::size_t(n));
  dyt::DyT<double, dyt::reference>::gradients g_ref;
  g_ref.dalpha = t.grad[P_ALPHA].ref.data();
  g_ref.dgamma = gamma ? t.grad[P_GAMMA].ref.data() : nullptr;
  g_ref.dbeta = beta ? t.grad[P_BETA].ref.data() : nullptr;
  if (!ref.backward({in.x.data(), rows, n}, {in.dy.data(), rows, n}, {t.dx.ref.data(), rows, n}, g_ref).ok())
    finding("reference refused");
  const bool ovf_dx = Mdy * Mg >= cmax / 4 || Mdy * Mg * Ma >= cmax / 4;
  const bool ovf_cols = (double(rows) * Mdy + Mp) >= cmax / 4;
  // dalpha sums x g with g = dy gamma (1 - t^2): once dy gamma overflows, x = 0 gives 0 * Inf = NaN.
  const bool ovf_alpha = ovf_dx || double(n) * double(rows) * Mx * Mdy * Mg + Mp >= cmax / 4;
  double dalpha_scale = 0;
  for (index_t j = 0; j < n; ++j) {
    double dgamma_scale = 0, dbeta_scale = 0;
    const double g = gamma ? std::fabs(gamma[j]) : 1.0;
    for (index_t r = 0; r < rows; ++r) {
      const std::size_t i = std::size_t(r * n + j);
      const double th = std::tanh(alpha * in.x[i]), dy = std::fabs(in.dy[i]);
      // dx: k = 4p + 3, scale |alpha dy gamma| (test_backward.cpp, dyt_truth).
      t.dx.set(i, 4 * p + 3, Ma * dy * g, 16 * tiny * (1 + Ma) * (1 + dy) * (1 + g));
      t.dx.overflow[i] = ovf_dx;
      dgamma_scale += dy * std::fabs(th);
      dbeta_scale += dy;
      dalpha_scale += std::fabs(in.x[i]) * dy * g;
    }
    // dgamma: k = rows + 2p + 3, scale sum |dy t|; dbeta: k = rows, scale sum |dy|.
    t.grad[P_GAMMA].set(std::size_t(j), double(rows) + 2 * p + 3, dgamma_scale, 16 * tiny * double(rows) * (1 + Mdy));
    t.grad[P_BETA].set(std::size_t(j), double(rows), dbeta_scale, 16 * tiny * double(rows) * (1 + Mdy));
    t.grad[P_GAMMA].overflow[std::size_t(j)] = t.grad[P_BETA].overflow[std::size_t(j)] = ovf_cols;
  }
  // dalpha: k = n + rows + 4p + 3, scale sum |x dy gamma|.
  t.grad[P_ALPHA].set(0, double(n + rows) + 4 * p + 3, dalpha_scale,
                      16 * tiny * double(n + rows) * (1 + Mx) * (1 + Mdy) * (1 + Mg));
  t.grad[P_ALPHA].overflow[0] = ovf_alpha;
  return t;
}

// Derf and DyISRU: the derivation of tests/pointwise_truth.hpp (make_truth),
// restated. With a the exact argument alpha x (+ shift) and A its computed
// error in units of u (|alpha x|, plus |alpha x + shift| with the shift):
// t = f(computed a) errs by f'(|a| - A u) A + value_error |t| (f' falls with
// |a|); f'(computed a) by max|f''| A + slope_error f'; y = fl(fl(gamma t) +
// beta) adds u |gamma t| + u (|gamma t| + |beta|); g = fl(fl(dy gamma) f')
// 2u |g|, dx = fl(g alpha) u more; sums (n + rows - 1) u times their sum of
// magnitudes; one unit of u per bound as slack. Bounds are absolute, in units
// of u: k = 1, scale = the bound (harness.hpp's bound() multiplies by u + 2^-53).
//
// Beyond the tests' inputs, as for DyT: roundings into the compute type's
// subnormals (16 subnormal spacings, times what multiplies them later), and
// for erf an exp whose result left the normal range, where its accuracy was
// measured (docs/pointwise.md: every float in [-87.3, 0)): an absolute error
// of up to the smallest normal value times 2/sqrt(pi), allowed wherever the
// true slope near the computed argument is below 4 of those. An argument
// alpha x (or alpha x + shift) beyond half the compute type's largest value
// may have overflowed there (Inf - Inf = NaN with an infinite shift): its
// outputs, and the sums they enter, may be non-finite.
struct erf_spec {
  static constexpr bool has_shift = true;
  static double f(double a) { return std::erf(a); }
  static double df(double a) { return 1.1283791670955126 * std::exp(-a * a); }
  static constexpr double d2_max = 0.968;  // max |f''| = 2 sqrt(2 / (pi e))
  // 2 x the ulps of xsimd's erf (float 2.43, double 24.5; glibc's are below both).
  static double value_error(bool double_compute) { return 2 * (double_compute ? 24.5 : 2.43); }
  // exp's argument -a^2 rounded (a^2 u relative), exp within 1.53 ulp, the constant and the product.
  static double slope_error(double a) { return a * a + 2 * 1.53 + 2; }
};
struct isru_spec {
  static constexpr bool has_shift = false;
  static double f(double a) { return a / std::sqrt(1 + a * a); }
  static double df(double a) { return std::pow(1 + a * a, -1.5); }
  static constexpr double d2_max = 0.859;  // max |f''| = 3 |a| (1 + a^2)^(-5/2)
  static double value_error(bool) { return 4; }
  static double slope_error(double) { return 12; }
};

template <class Spec, layer_kind K, class T, class C>
truth truth_squash(const case_cfg& c, const inputs& in) {
  truth t;
  const index_t rows = c.rows, n = c.cols;
  const double tiny = subnormal_spacing<C>(), cmax = compute_max<C>(), cmin = double(std::numeric_limits<C>::min());
  const double alpha = in.param[P_ALPHA][0];
  const double shift = Spec::has_shift ? in.param[P_SHIFT][0] : 0.0;
  const double* gamma = in.has[P_GAMMA] ? in.param[P_GAMMA].data() : nullptr;
  const double* beta = in.has[P_BETA] ? in.param[P_BETA].data() : nullptr;
  using R = typename layer_of<K, double, dyt::reference, dyt::tanh_precise>::type;
  const double* pr[kParams] = {&alpha, gamma, beta, &shift};
  case_cfg rc = c;
  rc.layer_cols = n;
  const R ref = layer_of<K, double, dyt::reference, dyt::tanh_precise>::make(rc, pr);
  const double Mx = in.max_abs[0], Mdy = in.max_abs[1], Mg = in.max_abs[2], Mb = in.max_abs[3],
               Ma = std::fabs(alpha), Mp = in.max_abs[5];
  const double pv = Spec::value_error(std::is_same<C, double>::value);
  auto arg = [&](std::size_t i, double& A, bool& ovf) {
    const double ax = alpha * in.x[i], a = ax + shift;
    A = std::fabs(ax) + (Spec::has_shift ? std::fabs(a) : 0.0);
    ovf = !(std::fabs(ax) < cmax / 2) || !(std::fabs(a) < cmax / 2);
    return a;
  };
  // f' near the computed argument (A u <= A 2^-20 in float and double).
  auto df_near = [&](double a, double A) { return Spec::df(std::max(0.0, std::fabs(a) - A * 0x1p-20)); };
  auto slope_floor = [&](double dfn) { return Spec::has_shift && dfn < 4 * cmin ? 1.13 * cmin : 0.0; };
  if (!c.backward()) {
    t.y.init(std::size_t(rows * n));
    if (!ref.forward({in.x.data(), rows, n}, {t.y.ref.data(), rows, n}).ok()) finding("reference refused");
    const bool ovf = Mg + Mb >= cmax / 4;
    for (index_t r = 0; r < rows; ++r)
      for (index_t j = 0; j < n; ++j) {
        const std::size_t i = std::size_t(r * n + j);
        double A = 0;
        bool ovf_arg = false;
        const double a = arg(i, A, ovf_arg);
        const double f = std::fabs(Spec::f(a));
        const double g = gamma ? std::fabs(gamma[j]) : 1.0, b = beta ? std::fabs(beta[j]) : 0.0;
        const double t_err = df_near(a, A) * A + pv * f;
        t.y.set(i, 1, g * t_err + 3 * (g * f + b), 16 * tiny * (1 + g));
        t.y.overflow[i] = ovf || ovf_arg;
      }
    return t;
  }
  t.dx.init(std::size_t(rows * n));
  for (int i = 0; i < kParams; ++i) t.grad[i].init(scalar_param(i) ? 1 : std::size_t(n));
  typename R::gradients g_ref;
  g_ref.dalpha = t.grad[P_ALPHA].ref.data();
  g_ref.dgamma = gamma ? t.grad[P_GAMMA].ref.data() : nullptr;
  g_ref.dbeta = beta ? t.grad[P_BETA].ref.data() : nullptr;
  if constexpr (Spec::has_shift) g_ref.dshift = t.grad[P_SHIFT].ref.data();
  if (!ref.backward({in.x.data(), rows, n}, {in.dy.data(), rows, n}, {t.dx.ref.data(), rows, n}, g_ref).ok())
    finding("reference refused");
  // |f'| <= 1.13: the products dy gamma f' alpha, and the sums over all elements.
  const bool ovf_dx = Mdy * Mg >= cmax / 4 || 2 * Mdy * Mg * Ma >= cmax / 4;
  const bool ovf_cols = (double(rows) * Mdy + Mp) >= cmax / 4;
  bool any_arg_ovf = false;
  double dalpha_err = 0, dalpha_sum = 0, dshift_err = 0, dshift_sum = 0, scalar_extra = 0;
  for (index_t j = 0; j < n; ++j) {
    double dgamma_err = 0, dgamma_sum = 0, dbeta_sum = 0;
    bool col_arg_ovf = false;
    const double gam = gamma ? std::fabs(gamma[j]) : 1.0;
    for (index_t r = 0; r < rows; ++r) {
      const std::size_t i = std::size_t(r * n + j);
      double A = 0;
      bool ovf_arg = false;
      const double a = arg(i, A, ovf_arg);
      any_arg_ovf = any_arg_ovf || ovf_arg;
      col_arg_ovf = col_arg_ovf || ovf_arg;
      const double x = std::fabs(in.x[i]), dy = std::fabs(in.dy[i]);
      const double f = std::fabs(Spec::f(a)), df = Spec::df(a), dfn = df_near(a, A);
      const double t_err = dfn * A + pv * f;
      // slope_error(a) f' is 0 where f' is (a^2 exp(-a^2) would be Inf * 0).
      const double slope_err = Spec::d2_max * A + (df > 0 ? Spec::slope_error(a) * df : 0.0);
      const double g_err = dy * gam * (slope_err + 2 * df), g_abs = dy * gam * df;
      const double extra = (16 * tiny + slope_floor(dfn)) * (1 + Ma) * (1 + dy) * (1 + gam);
      t.dx.set(i, 1, Ma * (g_err + 2 * g_abs), extra);
      t.dx.overflow[i] = ovf_dx || ovf_arg;
      dalpha_err += x * (g_err + g_abs);
      dalpha_sum += x * g_abs;
      dshift_err += g_err;
      dshift_sum += g_abs;
      scalar_extra += (16 * tiny + slope_floor(dfn)) * (1 + x) * (1 + dy) * (1 + gam);
      dgamma_err += dy * (t_err + f);
      dgamma_sum += dy * f;
      dbeta_sum += dy;
    }
    const double rd = double(rows);
    t.grad[P_GAMMA].set(std::size_t(j), 1, dgamma_err + rd * dgamma_sum, 16 * tiny * rd * (1 + Mdy));
    t.grad[P_BETA].set(std::size_t(j), 1, rd * dbeta_sum, 16 * tiny * rd * (1 + Mdy));
    t.grad[P_GAMMA].overflow[std::size_t(j)] = t.grad[P_BETA].overflow[std::size_t(j)] = ovf_cols;
    // dgamma sums dy t: an overflowed argument's t may be NaN (Inf - Inf).
    if (col_arg_ovf) t.grad[P_GAMMA].overflow[std::size_t(j)] = true;
  }
  const double additions = double(n + rows);
  const double sum_extra = scalar_extra * additions;
  t.grad[P_ALPHA].set(0, 1, dalpha_err + additions * dalpha_sum, sum_extra);
  // dalpha sums x g: once dy gamma overflows, x = 0 gives 0 * Inf = NaN.
  t.grad[P_ALPHA].overflow[0] =
      ovf_dx || any_arg_ovf || 2 * double(n) * double(rows) * Mx * Mdy * Mg + Mp >= cmax / 4;
  if constexpr (Spec::has_shift) {
    t.grad[P_SHIFT].set(0, 1, dshift_err + additions * dshift_sum, sum_extra);
    t.grad[P_SHIFT].overflow[0] = ovf_dx || any_arg_ovf || 2 * double(n) * double(rows) * Mdy * Mg + Mp >= cmax / 4;
  }
  return t;
}

// backward_residual: dx = fl(dh + dx') with dx' the layer's dx in the compute
// type (unrounded to T), rounded once to T. With E the layer's bound on dx'
// (k (u + 2^-53) scale + extra: the compute-type part of the bound, the store
// to T apart), |fl_C(dh + dx') - (dh + ref)| <= E + u (|dh| + |ref| + E), so k'
// = k (1 + u) + 1 on scale' = scale + |dh| + |ref| and extra' = extra (1 + u),
// and the store to T as before. The reference becomes dh + ref.
template <class C>
void add_residual(expect& dx, const std::vector<double>& dh) {
  const double u = unit_roundoff<C>();
  for (std::size_t i = 0; i < dx.ref.size(); ++i) {
    const double r = dx.ref[i];
    dx.scale[i] += std::fabs(dh[i]) + std::fabs(r);
    dx.k[i] = dx.k[i] * (1 + u) + 1;
    dx.extra[i] *= 1 + u;
    dx.ref[i] = dh[i] + r;
  }
}

// The rstd above which the variance (or mean square) plus eps is below
// 2^-(max_exp/2 - 4) of the compute type (2^-60 in float): there its squares
// may have underflowed and eps does not cover them. Only rows of eps = 0 (or
// a tiny eps) reach it; docs/numerics.md documents the limit.
template <class C>
constexpr double zone_rstd() {
  return std::is_same<C, double>::value ? 0x1p254 : 0x1p30;
}

template <class T, class C>
truth truth_norm(const case_cfg& c, const inputs& in, bool rms) {
  truth t;
  const index_t rows = c.rows, n = c.cols;
  const double nd = double(n), rowsd = double(rows);
  const double u = unit_roundoff<C>(), tiny = subnormal_spacing<C>(), cmax = compute_max<C>();
  const double* gamma = in.has[P_GAMMA] ? in.param[P_GAMMA].data() : nullptr;
  const double* beta = in.has[P_BETA] ? in.param[P_BETA].data() : nullptr;
  auto w = [&](index_t j) { return !gamma ? 1.0 : c.one_plus ? 1 + gamma[j] : gamma[j]; };
  const double Mdy = in.max_abs[1], Mg = in.max_abs[2], Mb = in.max_abs[3], Mp = in.max_abs[5];
  std::vector<double> y(static_cast<std::size_t>(rows * n)), mean(static_cast<std::size_t>(rows)),
      rstd(static_cast<std::size_t>(rows));
  dyt::status s;
  if (rms) {
    const dyt::RMSNorm<double, dyt::reference> ref(gamma, n, c.eps,
                                                   c.one_plus ? dyt::gamma_form::one_plus : dyt::gamma_form::plain);
    s = ref.forward({in.x.data(), rows, n}, {y.data(), rows, n}, {nullptr, rstd.data()});
  } else {
    const dyt::LayerNorm<double, dyt::reference> ref(gamma, beta, n, c.eps);
    s = ref.forward({in.x.data(), rows, n}, {y.data(), rows, n}, {mean.data(), rstd.data()});
  }
  if (!s.ok()) finding("reference refused: %s", s.message());

  // Per row: mean|x - x0| + |mean| and m1 = rstd (mean|x - x0| + |mean|)
  // (LayerNorm), the underflow zone, and how large the quantities the compute
  // type must hold can get.
  //
  // The CPU LayerNorm (ops/layer_norm.hpp, Robust) keeps the plain two-pass
  // mean, within (n + 1) u mean|x| of the true one, except for rows of tiny
  // variance, whose sweeps it centres on the row's first value x0:
  // fl(x0 + fl(sum fl(x - x0)) / n) is within (n + 1) u mean|x - x0| + u |mean|.
  // Both are within (n + 2) u max(mean|x|, mean|x - x0| + |mean|), so the
  // tests' derivations carry over with mean|x| replaced by that max and n by
  // n + 2 wherever it multiplies m1.
  std::vector<double> m1(static_cast<std::size_t>(rows), 0.0), mean_abs(static_cast<std::size_t>(rows), 0.0);
  std::vector<unsigned char> zone(static_cast<std::size_t>(rows), 0);
  bool any_zone = false;
  double rmax = 0;
  for (index_t r = 0; r < rows; ++r) {
    const double x0 = in.x[std::size_t(r * n)];
    double plain = 0, centred = 0;
    for (index_t j = 0; j < n; ++j) {
      plain += std::fabs(in.x[std::size_t(r * n + j)]) / nd;
      centred += std::fabs(in.x[std::size_t(r * n + j)] - x0) / nd;
    }
    mean_abs[std::size_t(r)] = rms ? plain : std::max(plain, centred + std::fabs(mean[std::size_t(r)]));
    const double rs = rstd[std::size_t(r)];
    m1[std::size_t(r)] = rms ? 0 : rs * mean_abs[std::size_t(r)];
    zone[std::size_t(r)] = !(rs <= zone_rstd<C>());  // NaN rstd (a NaN input) is not a zone row
    if (std::isnan(rs)) zone[std::size_t(r)] = 0;
    any_zone = any_zone || zone[std::size_t(r)];
    if (std::isfinite(rs)) rmax = std::max(rmax, rs);
  }
  const double sqn = std::sqrt(nd);
  // rstd's relative error beyond the derivation where rstd is subnormal.
  auto rel_extra = [&](index_t r) {
    const double rs = rstd[std::size_t(r)];
    return rs > 0 && std::isfinite(rs) ? 8 * tiny / rs : 0.0;
  };

  if (!c.backward()) {
    t.y.init(std::size_t(rows * n));
    t.y.ref = y;
    t.rstd.init(std::size_t(rows));
    t.rstd.ref = rstd;
    t.mean.init(std::size_t(rows));
    t.mean.ref = mean;
    const bool ovf_y = Mg * sqn + Mb >= cmax / 4;
    for (index_t r = 0; r < rows; ++r) {
      const std::size_t ri = std::size_t(r);
      const double rs = rstd[ri];
      if (rms) {
        // rstd: k = rho + 1 with rho = n/2 + 3.5; y: k = rho + 4, scale |w x rstd| (test_forward.cpp, rms_norm_truth).
        const double rho = nd / 2 + 3.5;
        t.rstd.set(ri, rho + 1, rs, rel_extra(r) * rs);
        for (index_t j = 0; j < n; ++j) {
          const std::size_t i = std::size_t(r * n + j);
          const double sc = std::fabs(w(j) * in.x[i] * rs);
          t.y.set(i, rho + 4, sc, rel_extra(r) * sc + 16 * tiny * (1 + std::fabs(w(j))));
        }
      } else {
        // mean: k = n + 2, scale max(mean|x|, mean|x - x0| + |mean|); rstd: k = rho0 + 1 + rho1 u with
        // rho0 = n/2 + 4.5, rho1 = ((n + 2) m1)^2 / 2; y: k = max(n + 2, rho0 + 4) + 1 + rho1 u,
        // scale |gamma| (|xh| + m1) + |beta| (test_forward.cpp, layer_norm_truth, centred as above).
        const double rho0 = nd / 2 + 4.5, rho1 = (nd + 2) * (nd + 2) * m1[ri] * m1[ri] / 2;
        t.mean.set(ri, nd + 2, mean_abs[ri], 16 * tiny);
        t.rstd.set(ri, rho0 + 1 + rho1 * u, rs, rel_extra(r) * rs);
        for (index_t j = 0; j < n; ++j) {
          const std::size_t i = std::size_t(r * n + j);
          const double xh = (in.x[i] - mean[ri]) * rs;
          const double g = std::fabs(w(j)), b = beta ? std::fabs(beta[j]) : 0.0;
          const double sc = g * (std::fabs(xh) + m1[ri]) + b;
          t.y.set(i, std::max(nd + 2, rho0 + 4) + 1 + rho1 * u, sc,
                  rel_extra(r) * g * std::fabs(xh) + 16 * tiny * (1 + g) * (1 + rs));
        }
      }
      for (index_t j = 0; j < n; ++j) {
        const std::size_t i = std::size_t(r * n + j);
        t.y.skip[i] = zone[ri];
        t.y.overflow[i] = ovf_y;
      }
      t.mean.skip[ri] = t.rstd.skip[ri] = zone[ri];
    }
    return t;
  }

  t.dx.init(std::size_t(rows * n));
  for (int i = 0; i < kParams; ++i) t.grad[i].init(scalar_param(i) ? 1 : std::size_t(n));
  if (rms) {
    const dyt::RMSNorm<double, dyt::reference> ref(gamma, n, c.eps,
                                                   c.one_plus ? dyt::gamma_form::one_plus : dyt::gamma_form::plain);
    dyt::RMSNorm<double, dyt::reference>::gradients g;
    g.dgamma = gamma ? t.grad[P_GAMMA].ref.data() : nullptr;
    s = ref.backward({in.x.data(), rows, n}, {in.dy.data(), rows, n}, {t.dx.ref.data(), rows, n}, g);
  } else {
    const dyt::LayerNorm<double, dyt::reference> ref(gamma, beta, n, c.eps);
    dyt::LayerNorm<double, dyt::reference>::gradients g;
    g.dgamma = gamma ? t.grad[P_GAMMA].ref.data() : nullptr;
    g.dbeta = beta ? t.grad[P_BETA].ref.data() : nullptr;
    s = ref.backward({in.x.data(), rows, n}, {in.dy.data(), rows, n}, {t.dx.ref.data(), rows, n}, g);
  }
  if (!s.ok()) finding("reference refused: %s", s.message());

  // Quantities the compute type must hold: dy w (and their row sums, |xh| <= sqrt(n)), times rstd.
  const double gh_sum = nd * Mdy * Mg * (1 + sqn);
  const bool ovf_dx = gh_sum >= cmax / 4 || gh_sum * std::max(1.0, rmax) >= cmax / 4;
  const bool ovf_cols = rowsd * Mdy * (1 + sqn) + Mp >= cmax / 4;
  const double amp = (1 + Mdy) * (1 + Mg) * (1 + rmax) * (1 + rmax) * (nd + rowsd);
  double rho1_max = 0;
  for (index_t r = 0; r < rows; ++r) {
    const std::size_t ri = std::size_t(r);
    const double rs = rstd[ri];
    const double rho0 = rms ? nd / 2 + 3.5 : nd / 2 + 4.5, rho1 = (nd + 2) * (nd + 2) * m1[ri] * m1[ri] / 2;
    if (!zone[ri] && std::isfinite(rho1)) rho1_max = std::max(rho1_max, rho1);
    double A = 0, B = 0;
    for (index_t j = 0; j < n; ++j) {
      const std::size_t i = std::size_t(r * n + j);
      const double gh = in.dy[i] * w(j), xh = (in.x[i] - mean[ri]) * rs;
      A += std::fabs(gh) / nd;
      B += std::fabs(gh * xh) / nd;
    }
    for (index_t j = 0; j < n; ++j) {
      const std::size_t i = std::size_t(r * n + j);
      const double gh = std::fabs(in.dy[i] * w(j)), axh = std::fabs((in.x[i] - mean[ri]) * rs);
      if (rms) {
        // dx: k = n + 3 rho + 9, scale r (|gh| + |xh| B) (test_backward.cpp, rms_norm_truth).
        const double sc = rs * (gh + axh * B);
        t.dx.set(i, nd + 3 * rho0 + 9, sc, 3 * rel_extra(r) * sc + 16 * tiny * amp);
      } else {
        // dx: k = n + 2 + 3 rho0 + 10 + 3 rho1 u, scale r (|gh| + A + |xh| B + m1 (B + |xh| A))
        // (test_backward.cpp, layer_norm_truth, centred as above).
        const double sc = rs * (gh + A + axh * B + m1[ri] * (B + axh * A));
        t.dx.set(i, nd + 2 + 3 * rho0 + 10 + 3 * rho1 * u, sc, 3 * rel_extra(r) * sc + 16 * tiny * amp);
      }
      t.dx.skip[i] = zone[ri];
      t.dx.overflow[i] = ovf_dx;
    }
  }
  for (index_t j = 0; j < n; ++j) {
    double dgamma_scale = 0, dbeta_scale = 0, extra = 0;
    for (index_t r = 0; r < rows; ++r) {
      const std::size_t i = std::size_t(r * n + j), ri = std::size_t(r);
      const double dy = std::fabs(in.dy[i]), xh = std::fabs((in.x[i] - mean[ri]) * rstd[ri]);
      dgamma_scale += dy * (xh + m1[ri]);
      dbeta_scale += dy;
      extra += 3 * rel_extra(r) * dy * xh;
    }
    const std::size_t jj = std::size_t(j);
    if (rms) {
      // dgamma: k = rows + rho + 2, scale sum |dy xh|.
      t.grad[P_GAMMA].set(jj, rowsd + nd / 2 + 3.5 + 2, dgamma_scale, extra + 16 * tiny * amp);
    } else {
      // dgamma: k = max(rows + rho0 + 2, n) + 1 + rho1_max u, scale sum |dy| (|xh| + m1); dbeta: k = rows.
      t.grad[P_GAMMA].set(jj, std::max(rowsd + nd / 2 + 4.5 + 2, nd + 2) + 1 + rho1_max * u, dgamma_scale,
                          extra + 16 * tiny * amp);
      t.grad[P_BETA].set(jj, rowsd, dbeta_scale, 16 * tiny * rowsd * (1 + Mdy));
    }
    // xh of a zone row is not within the derivation: neither is any dgamma it adds to.
    t.grad[P_GAMMA].skip[jj] = any_zone;
    t.grad[P_GAMMA].overflow[jj] = t.grad[P_BETA].overflow[jj] = ovf_cols;
  }
  return t;
}

}  // namespace fz
