// A user's program: one include, one DyT forward on its own buffers, checked
// against y = gamma * tanh(alpha * x) + beta computed with std::tanh.
#include <dyt/dyt.hpp>

#include <cmath>
#include <iostream>

int main() {
  constexpr int rows = 2;
  constexpr int cols = 3;
  float x[rows * cols] = {-3.0f, -0.5f, 0.0f, 0.25f, 1.0f, 4.0f};
  float gamma[cols] = {1.0f, 0.5f, 2.0f};
  float beta[cols] = {0.0f, 0.25f, -1.0f};
  float alpha = 0.5f;
  float y[rows * cols] = {};

  dyt::DyT<float> layer(&alpha, gamma, beta, cols);
  dyt::status s = layer.forward(dyt::rows_view<const float>(x, rows, cols),
                                dyt::rows_view<float>(y, rows, cols));
  if (!s) {
    std::cerr << "dyt forward failed: " << s.message() << "\n";
    return 1;
  }

  int mismatches = 0;
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      const int i = r * cols + c;
      const double expected = gamma[c] * std::tanh(static_cast<double>(alpha) * x[i]) + beta[c];
      // Well above any tanh policy's float error, far below a wrong formula's.
      if (!(std::fabs(y[i] - expected) <= 1e-5 * (1.0 + std::fabs(expected)))) {
        std::cerr << "y[" << r << "][" << c << "] = " << y[i] << ", expected " << expected << "\n";
        ++mismatches;
      }
    }
  }
  std::cout << "dyt " << DYT_VERSION_MAJOR << "." << DYT_VERSION_MINOR << "." << DYT_VERSION_PATCH
            << ": DyT forward on " << rows << "x" << cols << " floats, " << mismatches
            << " mismatches\n";
  return mismatches == 0 ? 0 : 1;
}
