// A one-line progress bar on stderr, drawn only when stderr is a terminal (logs and pipes stay clean).
#pragma once

#include <chrono>
#include <string>

namespace hilo::cli {

class ProgressBar {
 public:
  explicit ProgressBar(std::string label);
  ~ProgressBar();
  void update(double fraction, const std::string& detail = {});  // 0..1; redraws at most every 50 ms
  void done();

 private:
  void draw(double fraction);
  std::string label_, detail_;
  bool enabled_;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace hilo::cli
