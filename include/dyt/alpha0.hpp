// dyt/alpha0.hpp: where to start DyT's learnable alpha, from the paper's rules.
//
// "Transformers without Normalization" (Zhu et al., CVPR 2025) starts alpha at
// 0.5 everywhere except in LLM training, where it found the best alpha0
// depends on the model's width (not its depth) and on where the DyT sits: the
// one before attention wants a larger alpha0 than the ones before the FFN and
// at the end of the model. Its table:
//
//   width               1024   2048   4096   5120   8192
//   attention           1.0    1.0    0.8    0.6    0.2
//   FFN and final       1.0    0.5    0.2    0.15   0.05
#pragma once

#include <cmath>
#include <cstddef>

namespace dyt {

// alpha0 outside LLM training (vision, DiT, speech, DNA): the paper's default.
// It reports 0.5 to 1.2 all train; larger models or learning rates want less.
inline constexpr float default_alpha0 = 0.5f;

// Where a DyT sits in a pre-norm Transformer block.
enum class norm_site {
  attention,  // before the attention sublayer
  ffn,        // before the MLP / FFN sublayer
  final_norm  // after the last block, before the output projection
};

// The paper's alpha0 for an LLM of this width (d_model) at this site. Between
// the table's widths it is interpolated linearly in log2(width); below 1024
// it is the 1024 value (1.0) and above 8192 the 8192 value: the paper
// measured nothing outside that range, and these are the nearest it measured.
inline float recommended_alpha0(std::size_t width, norm_site site) noexcept {
  struct row {
    double width, attention, ffn_and_final;
  };
  static constexpr row table[] = {
      {1024, 1.0, 1.0}, {2048, 1.0, 0.5}, {4096, 0.8, 0.2}, {5120, 0.6, 0.15}, {8192, 0.2, 0.05}};
  static constexpr std::size_t n = sizeof(table) / sizeof(table[0]);
  const auto pick = [site](const row& r) { return site == norm_site::attention ? r.attention : r.ffn_and_final; };
  const double w = static_cast<double>(width);
  if (w <= table[0].width) return static_cast<float>(pick(table[0]));
  if (w >= table[n - 1].width) return static_cast<float>(pick(table[n - 1]));
  std::size_t i = 1;
  while (table[i].width < w) ++i;
  const row& lo = table[i - 1];
  const row& hi = table[i];
  const double t = std::log2(w / lo.width) / std::log2(hi.width / lo.width);
  return static_cast<float>(pick(lo) + t * (pick(hi) - pick(lo)));
}

}  // namespace dyt
