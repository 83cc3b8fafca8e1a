// dyt/eigen.hpp: Eigen objects go in and out of the layers without copies,
// with their own row strides; shape mismatches are refused with nothing
// written; DyT folded into the next linear layer gives the unfolded outputs.
#include <doctest/doctest.h>

#if defined(DYT_TESTS_HAVE_EIGEN)

#include <dyt/eigen.hpp>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace {

using RowMajorF = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using RowMajorB = Eigen::Matrix<Eigen::bfloat16, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

RowMajorF random_matrix(Eigen::Index rows, Eigen::Index cols, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  RowMajorF m(rows, cols);
  for (Eigen::Index i = 0; i < m.size(); ++i) m.data()[i] = normal(rng);
  return m;
}

// The layer on raw pointers, the truth for the Eigen calls (same code path, so
// the results must match bit for bit).
template <class Layer>
std::vector<float> forward_raw(const Layer& layer, const float* x, dyt::index_t rows, dyt::index_t cols,
                               dyt::index_t stride) {
  std::vector<float> y(std::size_t(rows * cols));
  REQUIRE(layer.forward(dyt::make_view(x, rows, cols, stride), dyt::make_view(y.data(), rows, cols)).ok());
  return y;
}

}  // namespace

TEST_CASE("eigen: views carry the data pointer and row stride of matrices, maps, blocks and refs") {
  RowMajorF m = random_matrix(6, 10, 1);
  const auto whole = dyt::eigen::view(m);
  CHECK(whole.data == m.data());
  CHECK(whole.rows == 6);
  CHECK(whole.cols == 10);
  CHECK(whole.row_stride == 10);

  // A block of columns 2..8 of rows 1..4: rows 10 apart, no copy.
  const auto block = dyt::eigen::view(m.block(1, 2, 3, 7));
  CHECK(block.data == &m(1, 2));
  CHECK(block.cols == 7);
  CHECK(block.row_stride == 10);

  // A Map with an outer stride over a padded buffer.
  std::vector<float> padded(5 * 16, 0.0f);
  Eigen::Map<RowMajorF, 0, Eigen::OuterStride<>> map(padded.data(), 5, 12, Eigen::OuterStride<>(16));
  const auto mapped = dyt::eigen::view(map);
  CHECK(mapped.row_stride == 16);
  CHECK(mapped.cols == 12);

  // A Ref<const ...> gives a const view; a single row has stride cols.
  Eigen::Ref<const RowMajorF> ref(m);
  const auto const_view = dyt::eigen::view(ref);
  static_assert(std::is_same<decltype(const_view), const dyt::rows_view<const float>>::value, "const in, const view");
  CHECK(const_view.data == m.data());
  const auto one_row = dyt::eigen::view(m.row(3));
  CHECK(one_row.rows == 1);
  CHECK(one_row.cols == 10);
  CHECK(one_row.data == &m(3, 0));
}

TEST_CASE("eigen: every layer runs forward on a block and writes into another block, as on raw pointers") {
  const RowMajorF x = random_matrix(7, 33, 2);
  RowMajorF gamma = random_matrix(1, 19, 3), beta = random_matrix(1, 19, 4);
  float alpha = 0.7f;
  // Columns 5..23 of x (row stride 33), written into columns 3..21 of y (row stride 40).
  const auto x_block = x.block(0, 5, 7, 19);
  RowMajorF y = RowMajorF::Constant(7, 40, 123.0f);

  const dyt::DyT<float> dyt_layer(&alpha, gamma.data(), beta.data(), 19);
  const dyt::LayerNorm<float> layer_norm(gamma.data(), beta.data(), 19);
  const dyt::RMSNorm<float> rms_norm(gamma.data(), 19);
  auto check_layer = [&](const auto& layer, const char* name) {
    const std::string layer_name(name);
    CAPTURE(layer_name);
    y.setConstant(123.0f);
    REQUIRE(dyt::eigen::forward(layer, x_block, y.block(0, 3, 7, 19)).ok());
    const std::vector<float> truth = forward_raw(layer, &x(0, 5), 7, 19, 33);
    for (int r = 0; r < 7; ++r) {
      for (int c = 0; c < 40; ++c) {
        if (c >= 3 && c < 22)
          CHECK(std::memcmp(&y(r, c), &truth[std::size_t(r * 19 + c - 3)], sizeof(float)) == 0);
        else
          CHECK(y(r, c) == 123.0f);  // outside the block: untouched
      }
    }
  };
  check_layer(dyt_layer, "DyT");
  check_layer(layer_norm, "LayerNorm");
  check_layer(rms_norm, "RMSNorm");
}

TEST_CASE("eigen: backward takes Eigen objects, and Eigen::bfloat16 matrices work without copies") {
  const RowMajorF xf = random_matrix(4, 24, 5), dyf = random_matrix(4, 24, 6);
  const RowMajorB x = xf.cast<Eigen::bfloat16>(), dy = dyf.cast<Eigen::bfloat16>();
  RowMajorB dx(4, 24);
  std::vector<Eigen::bfloat16> gamma(24, Eigen::bfloat16(1.5f)), dgamma(24);
  const dyt::RMSNorm<Eigen::bfloat16> layer(gamma.data(), 24);
  REQUIRE(dyt::eigen::backward(layer, x, dy, dx, {dgamma.data()}).ok());

  // The same bytes through dyt::bfloat16 give the same bits.
  std::vector<dyt::bfloat16> dx_raw(4 * 24), dgamma_raw(24);
  const dyt::RMSNorm<dyt::bfloat16> raw(reinterpret_cast<const dyt::bfloat16*>(gamma.data()), 24);
  REQUIRE(raw.backward(dyt::make_view(reinterpret_cast<const dyt::bfloat16*>(x.data()), 4, 24),
                       dyt::make_view(reinterpret_cast<const dyt::bfloat16*>(dy.data()), 4, 24),
                       dyt::make_view(dx_raw.data(), 4, 24), {dgamma_raw.data()})
              .ok());
  CHECK(std::memcmp(dx.data(), dx_raw.data(), dx_raw.size() * 2) == 0);
  CHECK(std::memcmp(dgamma.data(), dgamma_raw.data(), dgamma_raw.size() * 2) == 0);
}

TEST_CASE("eigen: a shape mismatch is refused by the layer, and nothing is written") {
  const RowMajorF x = random_matrix(3, 8, 7);
  RowMajorF y = RowMajorF::Constant(3, 9, 5.0f);
  float alpha = 1.0f;
  const dyt::DyT<float> layer(&alpha, nullptr, nullptr, 8);
  const dyt::status s = dyt::eigen::forward(layer, x, y);
  CHECK(s.code() == dyt::errc::size_mismatch);
  CHECK(std::string(s.message()).find("y") != std::string::npos);
  CHECK((y.array() == 5.0f).all());
}

// z = W (gamma * tanh(alpha x) + beta) + b against z' = W' tanh(alpha x) + b'.
// Both sides are float matrix products of length `cols` over the same t; they
// differ by the rounding of gamma * t + beta and of W' and b' (each one float
// rounding) and by the products' own rounding: at most a few (cols + 2) float
// ulps of sum |W| |y| + |b|. The bound below is 4 (cols + 2) u of that sum,
// u = 2^-24: the standard dot-product error bound with a factor of 4 to spare.
TEST_CASE("eigen: DyT folded into the next linear layer gives the unfolded outputs within float rounding") {
  const int rows = 9, cols = 48, out = 20;
  const RowMajorF x = random_matrix(rows, cols, 8);
  RowMajorF gamma = random_matrix(1, cols, 9);
  gamma.array() += 1.0f;
  const RowMajorF beta = random_matrix(1, cols, 10);
  const RowMajorF W = random_matrix(out, cols, 11);
  const Eigen::VectorXf b = random_matrix(out, 1, 12);
  float alpha = 0.6f;

  RowMajorF y(rows, cols), t(rows, cols);
  const dyt::DyT<float> full(&alpha, gamma.data(), beta.data(), cols);
  const dyt::DyT<float> bare(&alpha, nullptr, nullptr, cols);
  REQUIRE(dyt::eigen::forward(full, x, y).ok());
  REQUIRE(dyt::eigen::forward(bare, x, t).ok());

  RowMajorF W_folded = W;
  Eigen::VectorXf b_folded = b;
  REQUIRE(dyt::eigen::fold_into_linear(gamma.data(), beta.data(), cols, W_folded, b_folded).ok());

  const RowMajorF z = (y * W.transpose()).rowwise() + b.transpose();
  const RowMajorF z_folded = (t * W_folded.transpose()).rowwise() + b_folded.transpose();
  const RowMajorF scale = (y.cwiseAbs() * W.cwiseAbs().transpose()).rowwise() + b.cwiseAbs().transpose();
  const float u = std::ldexp(1.0f, -24);
  CHECK(((z - z_folded).cwiseAbs().array() <= 4.0f * (cols + 2) * u * scale.array()).all());
  // Not trivially equal: folding changed W and b.
  CHECK((W_folded - W).cwiseAbs().maxCoeff() > 0.0f);
  CHECK((b_folded - b).cwiseAbs().maxCoeff() > 0.0f);
}

TEST_CASE("eigen: folding with one parameter missing, and refusals that write nothing") {
  const RowMajorF W = random_matrix(3, 4, 13);
  const Eigen::VectorXf b = random_matrix(3, 1, 14);
  const float gamma[4] = {2.0f, 0.5f, -1.0f, 4.0f};

  // No beta: b is unchanged, W's columns scale by gamma exactly (powers of two and -1).
  RowMajorF W1 = W;
  Eigen::VectorXf b1 = b;
  REQUIRE(dyt::eigen::fold_into_linear(gamma, static_cast<const float*>(nullptr), 4, W1, b1).ok());
  CHECK((b1.array() == b.array()).all());
  for (int j = 0; j < 4; ++j) CHECK((W1.col(j).array() == W.col(j).array() * gamma[j]).all());

  // W with 5 columns for a 4-channel layer; b of the wrong length.
  RowMajorF W5 = random_matrix(3, 5, 15), W5_before = W5;
  Eigen::VectorXf b2 = b;
  dyt::status s = dyt::eigen::fold_into_linear(gamma, gamma, 4, W5, b2);
  CHECK(s.code() == dyt::errc::size_mismatch);
  CHECK((W5.array() == W5_before.array()).all());
  CHECK((b2.array() == b.array()).all());
  RowMajorF W2 = W;
  Eigen::VectorXf b_short = Eigen::VectorXf::Zero(2);
  s = dyt::eigen::fold_into_linear(gamma, gamma, 4, W2, b_short);
  CHECK(s.code() == dyt::errc::size_mismatch);
  CHECK((W2.array() == W.array()).all());
}

#else

TEST_CASE("eigen: not built (Eigen was not found)") { WARN_MESSAGE(false, "dyt/eigen.hpp untested: no Eigen"); }

#endif
