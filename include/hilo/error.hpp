// hilo's one error type. Every message names the offending argument and its value, e.g.
//   "hisa_prefill: ks[3] = 9 is greater than ke[3] = 7".
#pragma once

#include <stdexcept>
#include <string>

namespace hilo {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace hilo
