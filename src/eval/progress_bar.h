// A progress bar with an ETA for long evaluations, drawn on stderr. On a terminal it redraws
// one line in place; otherwise (logs, CI) it prints a plain line at every tenth of the work, so
// captured output stays short.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>

namespace qaq::internal {

// "label [########............] 12/40 (30%) 3.2 s, ETA 7.5 s": elapsed and remaining seconds
// (the remaining time extrapolates the mean time per item so far; unknown before the first).
std::string FormatProgress(const std::string& label, int done, int total, double elapsed_seconds,
                           int width = 24);

// "12.3 s", "4 min 05 s", "1 h 02 min".
std::string FormatDuration(double seconds);

class ProgressBar {
 public:
  // out: where to draw (stderr by default); nullptr draws nothing.
  ProgressBar(std::string label, int total, std::FILE* out = stderr);
  // Work done so far; `done` never decreases. Serialise calls (ParallelFor does).
  void Update(int done);
  // Ends the line (terminal) or prints the final state (logs).
  void Finish();
  double elapsed_seconds() const;

 private:
  std::string label_;
  int total_;
  std::FILE* out_;
  bool terminal_;
  int last_decile_ = -1;
  int done_ = 0;
  bool finished_ = false;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace qaq::internal
