// dyt/detail/checks.hpp: argument validation shared by every layer and backend.
//
// A call is checked completely before anything is written, so a refused call
// leaves every buffer the caller owns untouched. The first failure wins and
// names the function, the argument and the values.
#pragma once

#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cmath>
#include <cstddef>
#include <cstdint>

#include "../backward_plan.hpp"
#include "../status.hpp"
#include "../view.hpp"

namespace dyt {
namespace detail {

// A block of caller memory a call reads or writes: `rows` runs of `cols`
// elements of `elem_size` bytes, `stride` elements apart.
struct region {
  const char* name = nullptr;
  std::uintptr_t base = 0;
  index_t rows = 0, cols = 0, stride = 0;
  std::size_t elem_size = 0;
  bool output = false;
  // x, y, dy, dx: an output may be exactly the same view as one of these inputs (in place).
  bool aliasable = false;

  // In unsigned arithmetic: an array of more than PTRDIFF_MAX bytes (a
  // claimed n beyond the address space) wraps instead of overflowing a
  // signed product (fuzz/'s finding 6 reached that through static_scales).
  std::uintptr_t end() const {
    return base + std::uintptr_t((rows - 1) * stride + cols) * std::uintptr_t(elem_size);
  }
};

inline bool same_view(const region& a, const region& b) {
  return a.base == b.base && a.rows == b.rows && a.cols == b.cols && a.stride == b.stride &&
         a.elem_size == b.elem_size;
}

// Whether two regions share a byte. Exact for views of one element type and
// one stride (interleaved rows of one buffer do not overlap); otherwise
// conservative: their address ranges intersect.
inline bool overlaps(const region& a, const region& b) {
  if (a.end() <= b.base || b.end() <= a.base) return false;
  const std::size_t e = a.elem_size;
  const bool strided_alike = e == b.elem_size && a.stride == b.stride && (a.rows > 1 || b.rows > 1);
  const std::intptr_t delta = std::intptr_t(b.base - a.base);
  if (!strided_alike || delta % std::intptr_t(e) != 0) return true;
  // Elements r*s + c of a meet d + r'*s + c' of b when (r - r')*s = d + c' - c,
  // which only k = r - r' within one row of d/s can satisfy.
  const index_t s = a.stride, d = index_t(delta / std::intptr_t(e));
  const index_t k0 = (d >= 0 ? d / s : -((-d + s - 1) / s));
  for (index_t k = k0 - 1; k <= k0 + 2; ++k) {
    if (k < -(b.rows - 1) || k > a.rows - 1) continue;
    const index_t gap = k * s - d;  // = c' - c
    if (gap >= -(a.cols - 1) && gap <= b.cols - 1) return true;
  }
  return false;
}

// The memory one call touches, gathered for arg_check::no_overlap.
class region_list {
 public:
  region_list& add(const region& r) {
    if (r.base) regions_[count_++] = r;
    return *this;
  }
  template <class U>
  region_list& view(const char* name, const rows_view<U>& v, bool output) {
    return add(region{name, std::uintptr_t(v.data), v.rows, v.cols, v.row_stride, sizeof(U), output, true});
  }
  template <class U>
  region_list& array(const char* name, U* p, index_t n, bool output) {
    return add(region{name, std::uintptr_t(p), 1, n, n, sizeof(U), output, false});
  }
  const region* data() const { return regions_; }
  int size() const { return count_; }

 private:
  region regions_[16];
  int count_ = 0;
};

class arg_check {
 public:
  explicit arg_check(const char* fn) : fn_(fn) {}

  bool ok() const { return st_.ok(); }
  const status& result() const { return st_; }

  // Records the first failure only: later checks see !ok() and do nothing.
#if defined(__GNUC__)
  __attribute__((format(printf, 3, 4)))
#endif
  arg_check&
  fail(errc code, const char* fmt, ...) {
    if (ok()) {
      char what[200];
      va_list args;
      va_start(args, fmt);
      std::vsnprintf(what, sizeof(what), fmt, args);
      va_end(args);
      st_ = status::error(code, "%s: %s", fn_, what);
    }
    return *this;
  }

  arg_check& not_null(const void* p, const char* name) {
    if (ok() && !p) fail(errc::null_pointer, "%s is null", name);
    return *this;
  }

  // rows >= 1, cols >= 1, row_stride >= cols, data non-null, and the extent
  // representable: malformed views are refused before any address arithmetic.
  template <class U>
  arg_check& view(const rows_view<U>& v, const char* name) {
    if (!ok()) return *this;
    if (!v.data) return fail(errc::null_pointer, "%s.data is null", name);
    if (v.rows < 1 || v.cols < 1)
      return fail(errc::bad_size, "%s is %" PRId64 " x %" PRId64 ", needs at least 1 x 1", name, std::int64_t(v.rows),
                  std::int64_t(v.cols));
    if (v.row_stride < v.cols)
      return fail(errc::bad_stride, "%s.row_stride (%" PRId64 ") < %s.cols (%" PRId64 ")", name,
                  std::int64_t(v.row_stride), name, std::int64_t(v.cols));
    const index_t max_elems = PTRDIFF_MAX / index_t(sizeof(U));
    if (v.cols > max_elems || v.rows - 1 > (max_elems - v.cols) / v.row_stride)
      return fail(errc::bad_size, "%s spans more than PTRDIFF_MAX bytes (%" PRId64 " rows, row_stride %" PRId64 ")",
                  name, std::int64_t(v.rows), std::int64_t(v.row_stride));
    return *this;
  }

  template <class U>
  arg_check& cols_are(const rows_view<U>& v, const char* name, index_t cols, const char* what) {
    if (ok() && v.cols != cols)
      fail(errc::size_mismatch, "%s.cols (%" PRId64 ") != %s (%" PRId64 ")", name, std::int64_t(v.cols), what,
           std::int64_t(cols));
    return *this;
  }

  template <class U, class W>
  arg_check& same_shape(const rows_view<U>& a, const char* a_name, const rows_view<W>& b, const char* b_name) {
    if (ok() && (a.rows != b.rows || a.cols != b.cols))
      fail(errc::size_mismatch, "%s is %" PRId64 " x %" PRId64 " but %s is %" PRId64 " x %" PRId64, a_name,
           std::int64_t(a.rows), std::int64_t(a.cols), b_name, std::int64_t(b.rows), std::int64_t(b.cols));
    return *this;
  }

  // `largest`: the compute type's largest value. eps is used in the compute
  // type, and one above it would round to infinity there, making every rstd 0
  // and y = beta: silently wrong (found by fuzz/, test_fuzz_regressions.cpp).
  // The default, FLT_MAX, is right for every layer that computes in float.
  arg_check& eps(double value, const char* name = "eps", double largest = 0x1.fffffep127) {
    if (ok() && !(std::isfinite(value) && value >= 0))
      fail(errc::bad_parameter, "%s (%g) must be finite and >= 0", name, value);
    if (ok() && value > largest)
      fail(errc::bad_parameter, "%s (%g) exceeds the compute type's largest value (%g)", name, value, largest);
    return *this;
  }

  // A gradient buffer for a parameter the layer was built without.
  arg_check& grad_for(const void* grad, const void* param, const char* grad_name, const char* param_name) {
    if (ok() && grad && !param)
      fail(errc::bad_parameter, "%s is given but the layer has no %s", grad_name, param_name);
    return *this;
  }

  arg_check& plan(const backward_plan& p, index_t rows) {
    if (!ok()) return *this;
    if (p.rows != rows)
      return fail(errc::size_mismatch, "plan.rows (%" PRId64 ") != x.rows (%" PRId64 ")", std::int64_t(p.rows),
                  std::int64_t(rows));
    if (p.chunks < 1 || p.chunks > p.rows)
      return fail(errc::bad_range, "plan.chunks (%" PRId64 ") must be in [1, rows = %" PRId64 "]",
                  std::int64_t(p.chunks), std::int64_t(p.rows));
    return *this;
  }

  arg_check& chunk_range(const backward_plan& p, index_t first, index_t last) {
    if (ok() && !(0 <= first && first <= last && last <= p.chunks))
      fail(errc::bad_range, "chunk range [%" PRId64 ", %" PRId64 ") is not within [0, plan.chunks = %" PRId64 "]",
           std::int64_t(first), std::int64_t(last), std::int64_t(p.chunks));
    return *this;
  }

  arg_check& workspace(const void* ws, std::size_t bytes, std::size_t needed, std::size_t align) {
    if (!ok() || needed == 0) return *this;
    if (!ws) return fail(errc::null_pointer, "workspace is null (%zu bytes needed)", needed);
    if (bytes < needed) return fail(errc::bad_workspace, "workspace has %zu bytes, needs %zu", bytes, needed);
    if (std::uintptr_t(ws) % align != 0)
      return fail(errc::bad_workspace, "workspace %p is not aligned to %zu bytes", ws, align);
    return *this;
  }

  // Every output against every input and every other output; only an exact
  // alias of two activation views (y == x, dx == dy, ...) is allowed.
  arg_check& no_overlap(const region_list& list) {
    const region* regions = list.data();
    const int count = list.size();
    for (int i = 0; i < count && ok(); ++i) {
      const region& out = regions[i];
      if (!out.output || !out.base) continue;
      for (int k = 0; k < count; ++k) {
        const region& other = regions[k];
        if (k == i || !other.base || (other.output && k < i)) continue;
        if (out.aliasable && other.aliasable && !other.output && same_view(out, other)) continue;
        if (overlaps(out, other)) return fail(errc::overlap, "%s overlaps %s", out.name, other.name);
      }
    }
    return *this;
  }

 private:
  const char* fn_;
  status st_;
};

}  // namespace detail
}  // namespace dyt
