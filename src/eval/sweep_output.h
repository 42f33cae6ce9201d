// What `qaq sweep` writes: results.csv and results.json (every row, every byte count),
// summary.md (best ratio per method at the KL threshold, and all rows), and SVG plots of quality
// against compression per protocol. results.json is also what a resumed sweep reads back.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "qaq/eval.h"

namespace qaq::internal {

struct SweepHeader {
  std::string title;
  std::string model_id;
  int context = 0;
  int n_chunks = 0;
  double kl_threshold = 0.01;
  std::string x_label;  // the plots' x axis when every row has an x
};

std::string SweepCsv(const std::vector<SweepRow>& rows);
std::string SweepJson(const SweepHeader& header, const std::vector<SweepRow>& rows);
// Rows of a results.json by id (an unreadable or foreign file gives an empty map: nothing to
// reuse, and the file is rewritten).
std::map<std::string, SweepRow> ReadSweepJson(const std::string& text);
std::string SweepSummaryMarkdown(const SweepHeader& header, const std::vector<SweepRow>& rows);

// Writes results.csv, results.json, summary.md and the plots (kl_vs_ratio_<protocol>.svg,
// top1_vs_ratio_<protocol>.svg) to dir, each through a temporary file and a rename.
Status WriteSweepOutputs(const std::string& dir, const SweepHeader& header,
                         const std::vector<SweepRow>& rows);

// Writes `text` to path atomically (path.tmp, then rename).
Status WriteFileAtomically(const std::string& path, const std::string& text);

}  // namespace qaq::internal
