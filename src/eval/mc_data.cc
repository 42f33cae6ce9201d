// Readers of HellaSwag, PIQA and MathQA in their official formats, with the QAQ authors'
// preprocessing (src/qa_dataset.py of their repository).
#include <regex>
#include <string>

#include <nlohmann/json.hpp>

#include "qaq/eval.h"

namespace qaq {
namespace {

using nlohmann::json;

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

std::string_view StripView(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

std::string ReplaceAll(std::string_view s, std::string_view from, std::string_view to) {
  std::string out;
  std::size_t i = 0;
  while (true) {
    const std::size_t at = s.find(from, i);
    if (at == std::string_view::npos) break;
    out.append(s.substr(i, at - i));
    out.append(to);
    i = at + from.size();
  }
  out.append(s.substr(i));
  return out;
}

// Python's re.sub(r"\[.*?\]", "", s): '.' does not match a newline, so a '[' whose closing ']'
// comes after a newline (or never) is kept.
std::string DropBracketed(std::string_view s) {
  std::string out;
  std::size_t i = 0;
  while (i < s.size()) {
    if (s[i] == '[') {
      std::size_t j = i + 1;
      while (j < s.size() && s[j] != ']' && s[j] != '\n') ++j;
      if (j < s.size() && s[j] == ']') {
        i = j + 1;
        continue;
      }
    }
    out.push_back(s[i]);
    ++i;
  }
  return out;
}

// Splits text into lines, dropping a final empty line and '\r' before '\n'.
std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> lines;
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t end = text.find('\n', i);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(i, end - i);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    i = end + 1;
  }
  return lines;
}

StatusOr<std::string> StringField(const json& j, const char* key, std::string_view where) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) {
    return DataLossError("{}: missing string field '{}'", where, key);
  }
  return it->get<std::string>();
}

StatusOr<json> ParseJson(std::string_view text, std::string_view where) {
  json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return DataLossError("{}: not valid JSON", where);
  return j;
}

// An int label given as a number or as a string of digits (the Hugging Face copies use strings).
StatusOr<int> LabelField(const json& j, const char* key, std::string_view where) {
  auto it = j.find(key);
  if (it != j.end() && it->is_number_integer()) return it->get<int>();
  if (it != j.end() && it->is_string()) {
    const std::string s = it->get<std::string>();
    if (!s.empty() && s.size() < 4 && s.find_first_not_of("0123456789") == std::string::npos) {
      return std::stoi(s);
    }
  }
  return DataLossError("{}: missing integer field '{}'", where, key);
}

bool Full(const std::vector<McItem>& items, int limit) { return limit > 0 && int(items.size()) >= limit; }

}  // namespace

const char* McTaskName(McTask task) {
  switch (task) {
    case McTask::kHellaSwag: return "hellaswag";
    case McTask::kPiqa: return "piqa";
    case McTask::kMathQa: return "mathqa";
  }
  return "?";
}

StatusOr<McTask> ParseMcTask(std::string_view name) {
  if (name == "hellaswag") return McTask::kHellaSwag;
  if (name == "piqa") return McTask::kPiqa;
  if (name == "mathqa") return McTask::kMathQa;
  return InvalidArgumentError("unknown task '{}' (valid: hellaswag, piqa, mathqa)", name);
}

std::string PythonCapitalize(std::string_view text) {
  std::string out(text);
  for (std::size_t i = 0; i < out.size(); ++i) {
    const char c = out[i];
    if (i == 0 && c >= 'a' && c <= 'z') out[i] = char(c - 'a' + 'A');
    if (i > 0 && c >= 'A' && c <= 'Z') out[i] = char(c - 'A' + 'a');
  }
  return out;
}

std::string CleanHellaSwagText(std::string_view text) {
  std::string s = ReplaceAll(StripView(text), " [title]", ". ");
  s = DropBracketed(s);
  return ReplaceAll(s, "  ", " ");
}

std::vector<std::string> SplitMathQaOptions(std::string_view options) {
  static const std::regex kPattern(R"([abcd] \) .*?, |e \) .*?$)");
  std::vector<std::string> choices;
  const std::string s(options);
  for (auto it = std::sregex_iterator(s.begin(), s.end(), kPattern); it != std::sregex_iterator();
       ++it) {
    std::string c = it->str();
    c = c.size() > 4 ? c.substr(4) : std::string();
    while (!c.empty() && (c.back() == ' ' || c.back() == ',')) c.pop_back();
    choices.push_back(std::move(c));
  }
  return choices;
}

StatusOr<std::vector<McItem>> ParseHellaSwag(std::string_view jsonl, int limit) {
  std::vector<McItem> items;
  const std::vector<std::string_view> lines = Lines(jsonl);
  for (std::size_t n = 0; n < lines.size() && !Full(items, limit); ++n) {
    if (StripView(lines[n]).empty()) continue;
    const std::string where = fmt::format("line {}", n + 1);
    QAQ_ASSIGN_OR_RETURN(const json j, ParseJson(lines[n], where));
    QAQ_ASSIGN_OR_RETURN(const std::string activity, StringField(j, "activity_label", where));
    QAQ_ASSIGN_OR_RETURN(const std::string ctx_a, StringField(j, "ctx_a", where));
    QAQ_ASSIGN_OR_RETURN(const std::string ctx_b, StringField(j, "ctx_b", where));
    QAQ_ASSIGN_OR_RETURN(const int label, LabelField(j, "label", where));
    auto endings = j.find("endings");
    if (endings == j.end() || !endings->is_array() || endings->size() < 2) {
      return DataLossError("{}: 'endings' must be an array of at least two strings", where);
    }
    McItem item;
    item.context = CleanHellaSwagText(activity + ": " + ctx_a + " " + PythonCapitalize(ctx_b));
    for (const json& e : *endings) {
      if (!e.is_string()) return DataLossError("{}: an ending is not a string", where);
      item.choices.push_back(CleanHellaSwagText(e.get<std::string>()));
    }
    if (label < 0 || label >= int(item.choices.size())) {
      return DataLossError("{}: label {} is not one of the {} endings", where, label,
                           item.choices.size());
    }
    item.label = label;
    items.push_back(std::move(item));
  }
  return items;
}

StatusOr<std::vector<McItem>> ParsePiqa(std::string_view jsonl, std::string_view labels, int limit) {
  std::vector<std::string_view> label_lines = Lines(labels);
  while (!label_lines.empty() && StripView(label_lines.back()).empty()) label_lines.pop_back();
  std::vector<McItem> items;
  const std::vector<std::string_view> lines = Lines(jsonl);
  std::size_t index = 0;  // item index: the labels are aligned with non-empty lines
  for (std::size_t n = 0; n < lines.size() && !Full(items, limit); ++n) {
    if (StripView(lines[n]).empty()) continue;
    const std::string where = fmt::format("line {}", n + 1);
    QAQ_ASSIGN_OR_RETURN(const json j, ParseJson(lines[n], where));
    QAQ_ASSIGN_OR_RETURN(const std::string goal, StringField(j, "goal", where));
    QAQ_ASSIGN_OR_RETURN(std::string sol1, StringField(j, "sol1", where));
    QAQ_ASSIGN_OR_RETURN(std::string sol2, StringField(j, "sol2", where));
    if (index >= label_lines.size()) {
      return DataLossError("labels: {} labels for more items (item {} has none)",
                           label_lines.size(), index + 1);
    }
    const std::string_view l = StripView(label_lines[index]);
    if (l != "0" && l != "1") {
      return DataLossError("labels line {}: '{}' is not 0 or 1", index + 1, l);
    }
    McItem item;
    item.context = "Question: " + goal + "\nAnswer:";
    item.choices = {std::move(sol1), std::move(sol2)};
    item.label = l == "1" ? 1 : 0;
    items.push_back(std::move(item));
    ++index;
  }
  return items;
}

StatusOr<std::vector<McItem>> ParseMathQa(std::string_view text, int limit) {
  QAQ_ASSIGN_OR_RETURN(const json j, ParseJson(text, "MathQA file"));
  if (!j.is_array()) return DataLossError("MathQA file: expected a JSON array of problems");
  std::vector<McItem> items;
  for (std::size_t n = 0; n < j.size() && !Full(items, limit); ++n) {
    const std::string where = fmt::format("problem {}", n);
    if (!j[n].is_object()) return DataLossError("{}: not an object", where);
    QAQ_ASSIGN_OR_RETURN(const std::string problem, StringField(j[n], "Problem", where));
    QAQ_ASSIGN_OR_RETURN(const std::string options, StringField(j[n], "options", where));
    QAQ_ASSIGN_OR_RETURN(const std::string correct, StringField(j[n], "correct", where));
    McItem item;
    item.context = "Question: " + problem + "\nAnswer:";
    item.choices = SplitMathQaOptions(options);
    static constexpr std::string_view kLetters = "abcde";
    const std::size_t label = correct.size() == 1 ? kLetters.find(correct[0]) : std::string_view::npos;
    if (label == std::string_view::npos) {
      return DataLossError("{}: answer '{}' is not a letter a..e", where, correct);
    }
    if (label >= item.choices.size()) {
      return DataLossError("{}: answer '{}' but the options '{}' give {} choices", where, correct,
                           options, item.choices.size());
    }
    item.label = int(label);
    items.push_back(std::move(item));
  }
  return items;
}

StatusOr<std::vector<McItem>> ReadMcItems(McTask task, const std::string& path, int limit,
                                          const std::string& labels_path) {
  if (limit < 0) return InvalidArgumentError("item limit {} must be >= 0", limit);
  QAQ_ASSIGN_OR_RETURN(const std::string text, ReadTextFile(path));
  StatusOr<std::vector<McItem>> items = std::vector<McItem>{};
  switch (task) {
    case McTask::kHellaSwag:
      items = ParseHellaSwag(text, limit);
      break;
    case McTask::kMathQa:
      items = ParseMathQa(text, limit);
      break;
    case McTask::kPiqa: {
      std::string labels = labels_path;
      if (labels.empty()) {
        const std::string suffix = ".jsonl";
        if (path.size() < suffix.size() || path.compare(path.size() - suffix.size(), suffix.size(), suffix) != 0) {
          return InvalidArgumentError("{}: give the PIQA labels file (--labels); it cannot be "
                                      "derived from a name not ending in .jsonl", path);
        }
        labels = path.substr(0, path.size() - suffix.size()) + "-labels.lst";
      }
      QAQ_ASSIGN_OR_RETURN(const std::string label_text, ReadTextFile(labels));
      items = ParsePiqa(text, label_text, limit);
      break;
    }
  }
  if (!items.ok()) return items.status().WithContext(path);
  if (items->empty()) return DataLossError("{}: no items", path);
  return items;
}

}  // namespace qaq
