// recommended_alpha0: the paper's table at its own widths, monotone and
// clamped between them and outside them.
#include <dyt/alpha0.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <initializer_list>

namespace {

TEST_CASE("recommended_alpha0 returns the paper's table at the widths it lists") {
  struct entry {
    std::size_t width;
    float attention, ffn_and_final;
  };
  const entry table[] = {{1024, 1.0f, 1.0f}, {2048, 1.0f, 0.5f}, {4096, 0.8f, 0.2f}, {5120, 0.6f, 0.15f}, {8192, 0.2f, 0.05f}};
  for (const entry& e : table) {
    CAPTURE(e.width);
    CHECK(dyt::recommended_alpha0(e.width, dyt::norm_site::attention) == e.attention);
    CHECK(dyt::recommended_alpha0(e.width, dyt::norm_site::ffn) == e.ffn_and_final);
    CHECK(dyt::recommended_alpha0(e.width, dyt::norm_site::final_norm) == e.ffn_and_final);
  }
}

TEST_CASE("recommended_alpha0 holds the nearest measured width outside the table") {
  for (std::size_t w : {std::size_t(0), std::size_t(1), std::size_t(128), std::size_t(1023)}) {
    CHECK(dyt::recommended_alpha0(w, dyt::norm_site::attention) == 1.0f);
    CHECK(dyt::recommended_alpha0(w, dyt::norm_site::ffn) == 1.0f);
  }
  CHECK(dyt::recommended_alpha0(16384, dyt::norm_site::attention) == 0.2f);
  CHECK(dyt::recommended_alpha0(16384, dyt::norm_site::final_norm) == 0.05f);
}

TEST_CASE("recommended_alpha0 falls with width between the table's widths, in log2(width)") {
  // 3072 lies at log2(3072/2048) = 0.585 of the way from 2048 to 4096.
  const double t = 0.5849625007211562;
  CHECK(dyt::recommended_alpha0(3072, dyt::norm_site::attention) == doctest::Approx(1.0 + t * (0.8 - 1.0)).epsilon(1e-6));
  CHECK(dyt::recommended_alpha0(3072, dyt::norm_site::ffn) == doctest::Approx(0.5 + t * (0.2 - 0.5)).epsilon(1e-6));
  float previous_attention = 2.0f, previous_ffn = 2.0f;
  for (std::size_t w = 512; w <= 10000; w += 64) {
    const float a = dyt::recommended_alpha0(w, dyt::norm_site::attention);
    const float f = dyt::recommended_alpha0(w, dyt::norm_site::ffn);
    CAPTURE(w);
    CHECK(a <= previous_attention);
    CHECK(f <= previous_ffn);
    CHECK(f <= a);  // the attention site always starts at least as large
    previous_attention = a;
    previous_ffn = f;
  }
  CHECK(dyt::default_alpha0 == 0.5f);
}

}  // namespace
