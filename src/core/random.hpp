// Counter-based random streams: every draw is a function of (seed, purpose, index), so generated data never
// depends on threads or on the order in which items are produced.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>

namespace hilo {

inline uint64_t mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A small deterministic generator (splitmix64 stream) with uniform and normal draws.
class Stream {
 public:
  Stream(uint64_t seed, uint64_t purpose, uint64_t index) : state_(mix(mix(seed ^ mix(purpose)) ^ index)) {}
  uint64_t next() { return mix(state_++); }
  double uniform() { return (next() >> 11) * 0x1.0p-53; }
  double normal() {
    const double u1 = std::max(uniform(), 1e-300), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
  }
  int64_t below(int64_t n) { return static_cast<int64_t>(uniform() * n); }

 private:
  uint64_t state_;
};

}  // namespace hilo
