// tests/layer_variants.hpp: which parameters each layer is built with in the
// forward and backward tests (CPU and CUDA), named for the test messages.
#pragma once

#include <dyt/dyt.hpp>

namespace dyt_test {

struct dyt_variant {
  int id;
  const char* name;
  bool gamma, beta;
};
const dyt_variant kDytVariants[] = {
    {0, "gamma and beta", true, true}, {1, "gamma only (LLaMA)", true, false}, {2, "neither (DiT)", false, false}};

struct ln_variant {
  int id;
  const char* name;
  bool gamma, beta;
};
const ln_variant kLnVariants[] = {{0, "gamma and beta", true, true},
                                  {1, "gamma only", true, false},
                                  {2, "beta only", false, true},
                                  {3, "neither (elementwise_affine=False)", false, false}};

struct rms_variant {
  int id;
  const char* name;
  bool gamma;
  dyt::gamma_form form;
};
const rms_variant kRmsVariants[] = {{0, "gamma", true, dyt::gamma_form::plain},
                                    {1, "no gamma", false, dyt::gamma_form::plain},
                                    {2, "(1 + gamma) (Gemma)", true, dyt::gamma_form::one_plus}};

}  // namespace dyt_test
