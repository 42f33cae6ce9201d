// Readers for the llama2.c reference outputs of stories260K in the shared models folder
// (stories260K-reference-logits.txt and stories260K-reference-greedy.txt; layouts in their
// headers).
#pragma once

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace qaq::test {

struct ReferenceLogits {
  std::vector<int> sequence;                // BOS + prompt + greedy tokens
  std::vector<std::vector<float>> logits;   // [position][vocab], positions 0..15
};

// Empty result when the file cannot be read.
inline ReferenceLogits ReadReferenceLogits(const std::string& path) {
  ReferenceLogits ref;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    int pos, input, argmax;
    fields >> pos >> input >> argmax;
    if (ref.sequence.empty()) ref.sequence.push_back(input);
    ref.sequence.push_back(argmax);
    std::vector<float> row;
    float v;
    while (fields >> v) row.push_back(v);
    ref.logits.push_back(std::move(row));
  }
  return ref;
}

struct ReferenceGreedy {
  std::vector<int> prompt;     // with BOS
  std::vector<int> generated;  // 64 ids
  std::string text;            // run.c's stdout between BEGIN and END (no trailing newline)
};

inline std::vector<int> ParseIds(const std::string& line) {
  std::vector<int> ids;
  std::istringstream in(line);
  int id;
  while (in >> id) ids.push_back(id);
  return ids;
}

inline ReferenceGreedy ReadReferenceGreedy(const std::string& path) {
  ReferenceGreedy ref;
  std::ifstream in(path);
  std::string line;
  enum { kNone, kPrompt, kGenerated } next = kNone;
  bool in_text = false;
  std::string text;
  while (std::getline(in, line)) {
    if (line == "# BEGIN") {
      in_text = true;
      continue;
    }
    if (line == "# END") break;
    if (in_text) {
      text += (text.empty() ? "" : "\n") + line;
      continue;
    }
    if (line.rfind("# prompt token ids", 0) == 0) next = kPrompt;
    else if (line.rfind("# generated token ids", 0) == 0) next = kGenerated;
    else if (!line.empty() && line[0] != '#') {
      if (next == kPrompt) ref.prompt = ParseIds(line);
      if (next == kGenerated) ref.generated = ParseIds(line);
      next = kNone;
    }
  }
  ref.text = text;
  return ref;
}

}  // namespace qaq::test
