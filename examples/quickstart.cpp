// The README's quick start, compiled: one header, each layer once, in float
// and in bf16, forward and backward, with the status check a caller makes.
#include <dyt/dyt.hpp>

#include <cmath>
#include <cstdio>
#include <vector>

int main() {
  const dyt::index_t rows = 4, cols = 8;
  std::vector<float> x(rows * cols), y(rows * cols), gamma(cols, 1.0f), beta(cols, 0.0f);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.7f * float(i));
  float alpha = 0.5f;

  // DyT: y = gamma * tanh(alpha * x) + beta, on the caller's own buffers.
  dyt::DyT<float> dyt_layer(&alpha, gamma.data(), beta.data(), cols);
  dyt::status s = dyt_layer.forward(dyt::make_view<const float>(x.data(), rows, cols), dyt::make_view(y.data(), rows, cols));
  if (!s) {
    std::fprintf(stderr, "%s\n", s.message());
    return 1;
  }
  std::printf("DyT       y[0..3] = %.6f %.6f %.6f %.6f\n", y[0], y[1], y[2], y[3]);

  // LayerNorm and RMSNorm in bf16: the same calls, another scalar type.
  std::vector<dyt::bfloat16> xb(x.size()), yb(x.size()), gamma_b(cols, dyt::bfloat16(1.0f)), beta_b(cols, dyt::bfloat16(0.0f));
  for (std::size_t i = 0; i < x.size(); ++i) xb[i] = dyt::bfloat16(x[i]);
  dyt::LayerNorm<dyt::bfloat16> layer_norm(gamma_b.data(), beta_b.data(), cols, 1e-5);
  dyt::check(layer_norm.forward(dyt::make_view<const dyt::bfloat16>(xb.data(), rows, cols), dyt::make_view(yb.data(), rows, cols)));
  std::printf("LayerNorm y[0..3] = %.6f %.6f %.6f %.6f (bf16)\n", float(yb[0]), float(yb[1]), float(yb[2]), float(yb[3]));

  dyt::RMSNorm<dyt::bfloat16> rms_norm(gamma_b.data(), cols, 1e-6);
  dyt::check(rms_norm.forward(dyt::make_view<const dyt::bfloat16>(xb.data(), rows, cols), dyt::make_view(yb.data(), rows, cols)));
  std::printf("RMSNorm   y[0..3] = %.6f %.6f %.6f %.6f (bf16)\n", float(yb[0]), float(yb[1]), float(yb[2]), float(yb[3]));

  // Backward: dx and every parameter gradient of DyT, for dy = 1.
  std::vector<float> dy(x.size(), 1.0f), dx(x.size()), dgamma(cols), dbeta(cols);
  float dalpha = 0.0f;
  dyt::check(dyt_layer.backward(dyt::make_view<const float>(x.data(), rows, cols),
                                dyt::make_view<const float>(dy.data(), rows, cols), dyt::make_view(dx.data(), rows, cols),
                                {&dalpha, dgamma.data(), dbeta.data()}));
  std::printf("DyT backward: dalpha = %.6f, dbeta[0] = %.1f (= rows)\n", dalpha, dbeta[0]);

  // A refused call names the argument and writes nothing.
  s = dyt_layer.forward(dyt::make_view<const float>(x.data(), rows, cols - 1), dyt::make_view(y.data(), rows, cols - 1));
  std::printf("refused: %s\n", s.message());

  // Check against the formula, so the example fails loudly if it ever breaks.
  const float expected = std::tanh(alpha * x[1]);
  return std::fabs(y[1] - expected) < 1e-6f && dbeta[0] == float(rows) ? 0 : 1;
}
