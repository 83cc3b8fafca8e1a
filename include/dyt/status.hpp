// dyt/status.hpp: how every entry point reports bad input.
//
// Entry points return dyt::status and never throw, so the library works in code
// built with -fno-exceptions (as inference engines often are). A refused call
// has written nothing the caller owns. dyt::check() is the optional throwing
// convenience on top.
#pragma once

#include <cstdarg>
#include <cstdio>

#include "config.hpp"

#if DYT_HAS_EXCEPTIONS
#include <stdexcept>
#else
#include <cstdlib>
#endif

namespace dyt {

enum class errc {
  ok = 0,
  null_pointer,    // a required pointer is null
  bad_size,        // rows or cols < 1
  bad_stride,      // row_stride < cols
  size_mismatch,   // views or parameters disagree on rows or cols
  overlap,         // an output partially overlaps an input (exact aliasing is allowed)
  bad_parameter,   // eps non-finite or negative, a gradient asked for a parameter the layer lacks, ...
  bad_workspace,   // workspace too small or misaligned
  bad_range,       // chunk range outside the plan
  out_of_memory,   // a convenience call could not allocate its scratch
  device_error,    // the CUDA runtime reported an error (the message names it)
};

inline const char* to_string(errc e) {
  switch (e) {
    case errc::ok: return "ok";
    case errc::null_pointer: return "null_pointer";
    case errc::bad_size: return "bad_size";
    case errc::bad_stride: return "bad_stride";
    case errc::size_mismatch: return "size_mismatch";
    case errc::overlap: return "overlap";
    case errc::bad_parameter: return "bad_parameter";
    case errc::bad_workspace: return "bad_workspace";
    case errc::bad_range: return "bad_range";
    case errc::out_of_memory: return "out_of_memory";
    case errc::device_error: return "device_error";
  }
  return "unknown";
}

// The result of a call: a code and, on failure, a message naming the function,
// the argument and the values, e.g.
// "dyt::LayerNorm::forward: y.cols (767) != x.cols (768)".
class status {
 public:
  status() = default;

  // printf-style; the message is truncated to fit, never allocated.
#if defined(__GNUC__)
  __attribute__((format(printf, 2, 3)))
#endif
  static status
  error(errc code, const char* fmt, ...) {
    status s;
    s.code_ = code;
    va_list args;
    va_start(args, fmt);
    std::vsnprintf(s.message_, sizeof(s.message_), fmt, args);
    va_end(args);
    return s;
  }

  bool ok() const { return code_ == errc::ok; }
  explicit operator bool() const { return ok(); }
  errc code() const { return code_; }
  const char* message() const { return ok() ? "ok" : message_; }

 private:
  errc code_ = errc::ok;
  char message_[256] = {};
};

#if DYT_HAS_EXCEPTIONS
class error : public std::invalid_argument {
 public:
  explicit error(const status& s) : std::invalid_argument(s.message()), code_(s.code()) {}
  errc code() const { return code_; }

 private:
  errc code_;
};
#endif

// Throws dyt::error when s is a failure; without exceptions, prints the
// message and aborts. For callers who prefer exceptions to status checks.
inline void check(const status& s) {
  if (s.ok()) return;
#if DYT_HAS_EXCEPTIONS
  throw error(s);
#else
  std::fprintf(stderr, "%s\n", s.message());
  std::abort();
#endif
}

}  // namespace dyt
