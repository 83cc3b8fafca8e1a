// Determinism: the same inputs give bit-identical outputs and gradients, run
// after run, and for any way a caller's thread pool splits the work.
//
// backward_plan.hpp promises that parameter gradients depend only on the
// inputs and the plan's chunk count: each chunk sums its rows into its own
// workspace slot and reduce_gradients() adds the slots in chunk order. So any
// partition of a plan's chunks into backward_chunks() calls, run in any order
// from any threads, must give the bits of the whole-tensor backward() (which
// runs the default plan), and dx never depends on the split at all.
//
// Needs threads: link with pthreads (Threads::Threads).
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <numeric>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "check_helpers.hpp"

namespace {

using dyt::index_t;
using dyt_test::grad_buffers;
using dyt_test::matrix;
using dyt_test::rng;

// --- the layers under test: every layer, float and bf16, on the SIMD backend,
// plus the parameter variants that change the workspace layout.
using bf16 = dyt::bfloat16;

template <class T>
struct dyt_affine : dyt_test::dyt_kit<T, dyt::cpu> {
  dyt_affine(index_t cols, rng& r) : dyt_test::dyt_kit<T, dyt::cpu>(cols, r, true, true) {}
};
template <class T>
struct dyt_bare : dyt_test::dyt_kit<T, dyt::cpu> {  // DiT's tanh(alpha x): only dalpha
  dyt_bare(index_t cols, rng& r) : dyt_test::dyt_kit<T, dyt::cpu>(cols, r, false, false) {}
};
template <class T>
struct dyt_no_beta : dyt_test::dyt_kit<T, dyt::cpu> {  // LLaMA's DyT
  dyt_no_beta(index_t cols, rng& r) : dyt_test::dyt_kit<T, dyt::cpu>(cols, r, true, false) {}
};
template <class T>
struct ln_affine : dyt_test::layer_norm_kit<T, dyt::cpu> {
  ln_affine(index_t cols, rng& r) : dyt_test::layer_norm_kit<T, dyt::cpu>(cols, r, true, true) {}
};
template <class T>
struct ln_bare : dyt_test::layer_norm_kit<T, dyt::cpu> {  // no parameter gradients, no workspace
  ln_bare(index_t cols, rng& r) : dyt_test::layer_norm_kit<T, dyt::cpu>(cols, r, false, false) {}
};
template <class T>
struct rms_plain : dyt_test::rms_norm_kit<T, dyt::cpu> {
  rms_plain(index_t cols, rng& r) : dyt_test::rms_norm_kit<T, dyt::cpu>(cols, r, true) {}
};
template <class T>
struct rms_one_plus : dyt_test::rms_norm_kit<T, dyt::cpu> {
  rms_one_plus(index_t cols, rng& r) : dyt_test::rms_norm_kit<T, dyt::cpu>(cols, r, true, dyt::gamma_form::one_plus) {}
};

#define DYT_DETERMINISM_KITS                                                                                   \
  dyt_affine<float>, dyt_affine<bf16>, dyt_bare<float>, dyt_no_beta<bf16>, ln_affine<float>, ln_affine<bf16>, \
      ln_bare<float>, rms_plain<float>, rms_plain<bf16>, rms_one_plus<bf16>

// Several chunks each: 257 rows -> 8 chunks of 32-33 rows, 1000 rows -> 31
// chunks; 769 and 33 columns leave a scalar tail after the vector body.
struct shape {
  index_t rows, cols;
};
const shape kShapes[] = {{257, 769}, {1000, 33}};

// --- one backward pass's results

template <class T>
struct result {
  matrix<T> dx;
  grad_buffers<T> grads;
};

template <class T>
bool same_bits(const result<T>& a, const result<T>& b) {
  return dyt_test::same_bits(a.dx, b.dx) && dyt_test::same_bits(a.grads, b.grads);
}

template <class T>
struct problem {
  matrix<T> x, dy;
  problem(const shape& s, rng& r) : x(s.rows, s.cols), dy(s.rows, s.cols) {
    dyt_test::fill_uniform(x, r, -3.0, 3.0);
    dyt_test::fill_uniform(dy, r, -1.0, 1.0);
  }
};

template <class Kit, class T>
result<T> whole_backward(Kit& k, const problem<T>& p, dyt::grad_mode mode = dyt::grad_mode::overwrite,
                         const grad_buffers<T>* initial = nullptr) {
  result<T> out{matrix<T>(p.x.rows, p.x.cols), initial ? *initial : k.make_grads()};
  dyt_test::paint(out.dx);
  const dyt::status s = k.layer.backward(p.x.cview(), p.dy.cview(), out.dx.view(), Kit::pointers(out.grads), mode);
  REQUIRE_MESSAGE(s.ok(), s.message());
  return out;
}

// A split of a plan's chunks: one list of chunk ranges per thread, each list
// run in its order. With one list, it runs on the calling thread.
using range = std::pair<index_t, index_t>;
using split = std::vector<std::vector<range>>;

template <class Kit, class T>
result<T> chunked_backward(Kit& k, const problem<T>& p, const dyt::backward_plan& plan, const split& work,
                           dyt::grad_mode mode = dyt::grad_mode::overwrite, const grad_buffers<T>* initial = nullptr) {
  result<T> out{matrix<T>(p.x.rows, p.x.cols), initial ? *initial : k.make_grads()};
  dyt_test::paint(out.dx);
  dyt_test::workspace ws(k.layer.workspace_bytes(plan));
  ws.fill_nan();  // whatever the workspace held before must not matter

  std::vector<std::vector<dyt::status>> statuses(work.size());
  auto run_list = [&](std::size_t t) {
    for (const range& rg : work[t])
      statuses[t].push_back(k.layer.backward_chunks(plan, rg.first, rg.second, p.x.cview(), p.dy.cview(),
                                                    out.dx.view(), ws.data(), ws.size()));
  };
  if (work.size() == 1) {
    run_list(0);
  } else {
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < work.size(); ++t) threads.emplace_back(run_list, t);
    for (auto& th : threads) th.join();
  }
  for (const auto& list : statuses)
    for (const dyt::status& s : list) REQUIRE_MESSAGE(s.ok(), s.message());

  const dyt::status s = k.layer.reduce_gradients(plan, ws.data(), ws.size(), Kit::pointers(out.grads), mode);
  REQUIRE_MESSAGE(s.ok(), s.message());
  return out;
}

// --- the splits every plan is run with

split all_at_once(index_t chunks) { return {{{0, chunks}}}; }

split one_by_one(index_t chunks, bool reverse) {
  std::vector<range> list;
  for (index_t k = 0; k < chunks; ++k) list.push_back({k, k + 1});
  if (reverse) std::reverse(list.begin(), list.end());
  return {list};
}

// Random cut points, ranges run in a shuffled order (empty ranges included).
split random_partition(index_t chunks, rng& r) {
  std::vector<index_t> cuts{0, chunks};
  const index_t extra = r.between(0, std::min<index_t>(chunks, 6));
  for (index_t i = 0; i < extra; ++i) cuts.push_back(r.between(0, chunks));
  std::sort(cuts.begin(), cuts.end());
  std::vector<range> list;
  for (std::size_t i = 0; i + 1 < cuts.size(); ++i) list.push_back({cuts[i], cuts[i + 1]});
  std::shuffle(list.begin(), list.end(), r.engine());
  return {list};
}

// `threads` threads, each with a contiguous block of chunks; with `chunkwise`,
// each thread walks its block one chunk at a time.
split threaded(index_t chunks, int threads, bool chunkwise) {
  split work(static_cast<std::size_t>(threads));
  for (int t = 0; t < threads; ++t) {
    const index_t first = chunks * t / threads, last = chunks * (t + 1) / threads;
    if (chunkwise) {
      for (index_t k = first; k < last; ++k) work[static_cast<std::size_t>(t)].push_back({k, k + 1});
    } else {
      work[static_cast<std::size_t>(t)].push_back({first, last});
    }
  }
  return work;
}

// Round-robin: thread t runs chunks t, t + threads, ... (disjoint, interleaved).
split round_robin(index_t chunks, int threads) {
  split work(static_cast<std::size_t>(threads));
  for (index_t k = 0; k < chunks; ++k) work[static_cast<std::size_t>(k % threads)].push_back({k, k + 1});
  return work;
}

std::vector<std::pair<const char*, split>> every_split(index_t chunks, rng& r) {
  std::vector<std::pair<const char*, split>> s;
  s.push_back({"all at once", all_at_once(chunks)});
  s.push_back({"one by one", one_by_one(chunks, false)});
  s.push_back({"one by one, reversed", one_by_one(chunks, true)});
  for (int i = 0; i < 2; ++i) s.push_back({"random partition", random_partition(chunks, r)});
  for (int t = 2; t <= 4; ++t) s.push_back({"threads, contiguous blocks", threaded(chunks, t, false)});
  s.push_back({"3 threads, chunk by chunk", threaded(chunks, 3, true)});
  s.push_back({"4 threads, round robin", round_robin(chunks, 4)});
  return s;
}

}  // namespace

TEST_CASE_TEMPLATE("determinism: backward() twice gives the same bits", Kit, DYT_DETERMINISM_KITS) {
  using T = typename Kit::layer_type::value_type;
  rng r(1);
  for (const shape& s : kShapes) {
    CAPTURE(s.rows);
    CAPTURE(s.cols);
    Kit k(s.cols, r);
    const problem<T> p(s, r);
    const result<T> first = whole_backward(k, p);
    const result<T> second = whole_backward(k, p);
    CHECK(same_bits(first, second));

    matrix<T> y1(s.rows, s.cols), y2(s.rows, s.cols);
    REQUIRE(k.layer.forward(p.x.cview(), y1.view()).ok());
    REQUIRE(k.layer.forward(p.x.cview(), y2.view()).ok());
    CHECK(dyt_test::same_bits(y1, y2));
  }
}

TEST_CASE_TEMPLATE("determinism: any split of the default plan's chunks equals backward()", Kit,
                   DYT_DETERMINISM_KITS) {
  using T = typename Kit::layer_type::value_type;
  rng r(2);
  for (const shape& s : kShapes) {
    CAPTURE(s.rows);
    CAPTURE(s.cols);
    Kit k(s.cols, r);
    const problem<T> p(s, r);
    const result<T> expected = whole_backward(k, p);
    const dyt::backward_plan plan = dyt::make_backward_plan(s.rows);
    REQUIRE(plan.chunks > 1);
    for (const auto& named : every_split(plan.chunks, r)) {
      INFO("split: ", std::string(named.first));
      const result<T> got = chunked_backward(k, p, plan, named.second);
      CHECK(dyt_test::same_bits(got.dx, expected.dx));
      CHECK(dyt_test::same_bits(got.grads, expected.grads));
    }
  }
}

TEST_CASE_TEMPLATE("determinism: an explicit chunk count gives the same bits for every split", Kit,
                   DYT_DETERMINISM_KITS) {
  using T = typename Kit::layer_type::value_type;
  rng r(3);
  for (const shape& s : kShapes) {
    Kit k(s.cols, r);
    const problem<T> p(s, r);
    const result<T> whole = whole_backward(k, p);
    // One chunk, a few, one more than the default, and one row per chunk (the
    // long list only on the narrow shape, where it is cheap).
    const index_t default_chunks = dyt::make_backward_plan(s.rows).chunks;
    std::vector<index_t> counts{3};
    if (s.cols < 100) counts = {1, 3, 7, default_chunks + 1, s.rows};
    for (index_t chunks : counts) {
      CAPTURE(s.rows);
      CAPTURE(s.cols);
      CAPTURE(chunks);
      const dyt::backward_plan plan = dyt::make_backward_plan(s.rows, chunks);
      REQUIRE(plan.chunks == chunks);
      const result<T> expected = chunked_backward(k, p, plan, all_at_once(chunks));
      // dx does not depend on the plan at all.
      CHECK(dyt_test::same_bits(expected.dx, whole.dx));
      for (const auto& named : every_split(chunks, r)) {
        INFO("split: ", std::string(named.first));
        CHECK(same_bits(chunked_backward(k, p, plan, named.second), expected));
      }
    }
  }
}

TEST_CASE_TEMPLATE("determinism: grad_mode::accumulate through reduce_gradients", Kit, DYT_DETERMINISM_KITS) {
  using T = typename Kit::layer_type::value_type;
  rng r(4);
  const shape s = kShapes[1];  // 31 chunks to add up
  Kit k(s.cols, r);
  const problem<T> p(s, r);
  grad_buffers<T> initial = k.make_grads();
  for (auto& g : initial)
    for (auto& e : g) e = dyt_test::from_double<T>(r.uniform(-2.0, 2.0));

  const result<T> overwrite = whole_backward(k, p);
  const result<T> accumulated = whole_backward(k, p, dyt::grad_mode::accumulate, &initial);
  const dyt::backward_plan plan = dyt::make_backward_plan(s.rows);
  for (const auto& named : every_split(plan.chunks, r)) {
    INFO("split: ", std::string(named.first));
    CHECK(same_bits(chunked_backward(k, p, plan, named.second, dyt::grad_mode::accumulate, &initial), accumulated));
  }

  // accumulate = initial + this batch's gradient, summed in the compute type and
  // rounded once. For float storage the batch's gradient (overwrite) is that
  // compute-type sum itself, so the result is exactly initial + overwrite.
  for (std::size_t g = 0; g < initial.size(); ++g)
    for (std::size_t i = 0; i < initial[g].size(); ++i) {
      const double expected = dyt_test::to_double(initial[g][i]) + dyt_test::to_double(overwrite.grads[g][i]);
      const double got = dyt_test::to_double(accumulated.grads[g][i]);
      if constexpr (std::is_same<T, float>::value) {
        CHECK(got == static_cast<double>(static_cast<float>(initial[g][i]) + static_cast<float>(overwrite.grads[g][i])));
      } else {
        // bf16: got = round(I + G) and expected = I + round(G) for the exact
        // float batch gradient G; each rounding is within half a bf16 ulp
        // (2^-8 relative), of |I + G| <= |I| + |G| and of |G| respectively.
        const double i0 = std::fabs(dyt_test::to_double(initial[g][i]));
        const double g0 = std::fabs(dyt_test::to_double(overwrite.grads[g][i]));
        CHECK(std::fabs(got - expected) <= (i0 + 2 * g0) * 0x1p-8);
      }
    }

  // reduce_gradients only reads the workspace: a second accumulate adds the
  // same batch gradient again, and gives the same bits as two backward() calls.
  {
    result<T> twice = whole_backward(k, p, dyt::grad_mode::accumulate, &initial);
    REQUIRE(k.layer.backward(p.x.cview(), p.dy.cview(), twice.dx.view(), Kit::pointers(twice.grads),
                             dyt::grad_mode::accumulate)
                .ok());
    dyt_test::workspace ws(k.layer.workspace_bytes(plan));
    matrix<T> dx(s.rows, s.cols);
    REQUIRE(k.layer.backward_chunks(plan, 0, plan.chunks, p.x.cview(), p.dy.cview(), dx.view(), ws.data(), ws.size())
                .ok());
    grad_buffers<T> g = initial;
    for (int i = 0; i < 2; ++i)
      REQUIRE(k.layer.reduce_gradients(plan, ws.data(), ws.size(), Kit::pointers(g), dyt::grad_mode::accumulate).ok());
    CHECK(dyt_test::same_bits(g, twice.grads));
  }
}

TEST_CASE_TEMPLATE("determinism: forward over row slices from several threads equals the whole forward", Kit,
                   DYT_DETERMINISM_KITS) {
  using T = typename Kit::layer_type::value_type;
  rng r(5);
  for (const shape& s : kShapes) {
    CAPTURE(s.rows);
    CAPTURE(s.cols);
    Kit k(s.cols, r);
    const problem<T> p(s, r);
    matrix<T> expected(s.rows, s.cols);
    REQUIRE(k.layer.forward(p.x.cview(), expected.view()).ok());

    for (int threads = 2; threads <= 4; ++threads) {
      CAPTURE(threads);
      // Uneven random cuts, one slice per thread.
      std::vector<index_t> cuts{0, s.rows};
      for (int t = 1; t < threads; ++t) cuts.push_back(r.between(1, s.rows - 1));
      std::sort(cuts.begin(), cuts.end());
      matrix<T> y(s.rows, s.cols);
      dyt_test::paint(y);
      std::vector<dyt::status> statuses(static_cast<std::size_t>(threads));
      std::vector<std::thread> pool;
      for (int t = 0; t < threads; ++t)
        pool.emplace_back([&, t] {
          const index_t a = cuts[static_cast<std::size_t>(t)], b = cuts[static_cast<std::size_t>(t) + 1];
          if (a < b) statuses[static_cast<std::size_t>(t)] = k.layer.forward(p.x.cview().subrows(a, b), y.view().subrows(a, b));
        });
      for (auto& th : pool) th.join();
      for (const auto& st : statuses) CHECK_MESSAGE(st.ok(), st.message());
      CHECK(dyt_test::same_bits(y, expected));
    }
  }
}

// Saved statistics: LayerNorm's (mean, rstd) and RMSNorm's rstd, written by
// forward from row slices on several threads, give the bits of the
// whole-tensor statistics; backward with them gives the bits of backward
// without them (the layers document that the statistics are recomputed
// identically), whole or chunked.
template <class Kit>
void check_saved_statistics(Kit& k, const shape& s, rng& r) {
  using T = typename Kit::layer_type::value_type;
  using C = typename Kit::layer_type::compute_type;
  const problem<T> p(s, r);
  const bool with_mean = Kit::stats_saved == 2;
  std::vector<C> mean(with_mean ? static_cast<std::size_t>(s.rows) : 0), rstd(static_cast<std::size_t>(s.rows));
  matrix<T> y(s.rows, s.cols);
  REQUIRE(k.layer.forward(p.x.cview(), y.view(), {dyt_test::or_null(mean), rstd.data()}).ok());

  {
    std::vector<C> mean2(mean.size()), rstd2(rstd.size());
    matrix<T> y2(s.rows, s.cols);
    std::vector<dyt::status> statuses(3);
    std::vector<std::thread> pool;
    const index_t cuts[] = {0, s.rows / 5, s.rows / 2, s.rows};
    for (int t = 0; t < 3; ++t)
      pool.emplace_back([&, t] {
        const index_t a = cuts[t], b = cuts[t + 1];
        statuses[static_cast<std::size_t>(t)] =
            k.layer.forward(p.x.cview().subrows(a, b), y2.view().subrows(a, b),
                            {with_mean ? mean2.data() + a : nullptr, rstd2.data() + a});
      });
    for (auto& th : pool) th.join();
    for (const auto& st : statuses) CHECK_MESSAGE(st.ok(), st.message());
    CHECK(dyt_test::same_bits(y2, y));
    CHECK(dyt_test::same_bits(mean2, mean));
    CHECK(dyt_test::same_bits(rstd2, rstd));
  }

  const typename Kit::layer_type::saved_stats saved(dyt_test::or_null(mean), rstd.data());
  const result<T> without = whole_backward(k, p);
  result<T> with{matrix<T>(s.rows, s.cols), k.make_grads()};
  REQUIRE(k.layer.backward(p.x.cview(), p.dy.cview(), with.dx.view(), Kit::pointers(with.grads),
                           dyt::grad_mode::overwrite, saved)
              .ok());
  CHECK(same_bits(with, without));

  const dyt::backward_plan plan = dyt::make_backward_plan(s.rows);
  for (const auto& named : every_split(plan.chunks, r)) {
    INFO("split: ", std::string(named.first));
    result<T> out{matrix<T>(s.rows, s.cols), k.make_grads()};
    dyt_test::workspace ws(k.layer.workspace_bytes(plan));
    ws.fill_nan();
    std::vector<std::thread> pool;
    std::vector<dyt::status> statuses(named.second.size());
    for (std::size_t t = 0; t < named.second.size(); ++t)
      pool.emplace_back([&, t] {
        for (const range& rg : named.second[t]) {
          const dyt::status st = k.layer.backward_chunks(plan, rg.first, rg.second, p.x.cview(), p.dy.cview(),
                                                         out.dx.view(), ws.data(), ws.size(), saved);
          if (!st.ok()) statuses[t] = st;
        }
      });
    for (auto& th : pool) th.join();
    for (const auto& st : statuses) CHECK_MESSAGE(st.ok(), st.message());
    REQUIRE(k.layer.reduce_gradients(plan, ws.data(), ws.size(), Kit::pointers(out.grads)).ok());
    CHECK(same_bits(out, without));
  }
}

TEST_CASE_TEMPLATE("determinism: saved statistics change no bits", Kit, ln_affine<float>, ln_affine<bf16>,
                   rms_plain<float>, rms_one_plus<bf16>) {
  rng r(6);
  for (const shape& s : kShapes) {
    CAPTURE(s.rows);
    CAPTURE(s.cols);
    Kit k(s.cols, r);
    check_saved_statistics(k, s, r);
  }
}
