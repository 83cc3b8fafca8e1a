// libFuzzer harness: every public CPU entry point of dyt's point-wise layers,
// DyT, Derf and DyISRU (byte 0 picks which; see driver.hpp for what a case is
// and what is checked).
#include "harness.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return fz::run<fz::layer_kind::dyt>(data, size);
}
