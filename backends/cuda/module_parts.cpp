#include "backends/cuda/module_parts.h"

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdlib>

#include <fmt/format.h>

#include "backends/cuda/kernel_sources.h"

namespace rwkvc::cuda {

namespace {

bool identifier_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool identifier_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

std::string_view word_at(std::string_view text, std::size_t& i) {
  std::size_t start = i;
  while (i < text.size() && identifier_char(text[i])) ++i;
  return text.substr(start, i - start);
}

std::size_t skip_space(std::string_view text, std::size_t i) {
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  return i;
}

bool reserved(std::string_view word) {
  static const std::set<std::string_view> keywords = {
      "asm",    "auto",     "bool",   "char",     "class",  "const",  "constexpr", "double", "enum",
      "extern", "float",    "for",    "if",       "inline", "int",    "long",      "operator", "return",
      "short",  "signed",   "sizeof", "static",   "struct", "template", "typedef", "typename", "union",
      "unsigned", "using",  "void",   "volatile", "while"};
  return word.substr(0, 2) == "__" || keywords.count(word) > 0;
}

// Every identifier in `text`.
std::set<std::string_view> identifiers(std::string_view text) {
  std::set<std::string_view> words;
  for (std::size_t i = 0; i < text.size();) {
    if (identifier_start(text[i])) {
      words.insert(word_at(text, i));
    } else if (std::isdigit(static_cast<unsigned char>(text[i]))) {
      word_at(text, i);  // a number with its suffix
    } else {
      ++i;
    }
  }
  return words;
}

// Whether `text` defines the __global__ function `name`.
bool defines_kernel(std::string_view text, std::string_view name) {
  for (std::size_t at = text.find(name); at != std::string_view::npos; at = text.find(name, at + 1)) {
    bool whole = (at == 0 || !identifier_char(text[at - 1])) &&
                 (at + name.size() == text.size() || !identifier_char(text[at + name.size()]));
    if (!whole) continue;
    std::size_t after = skip_space(text, at + name.size());
    if (after >= text.size() || text[after] != '(') continue;
    std::size_t statement = text.find_last_of(";{}", at);
    statement = statement == std::string_view::npos ? 0 : statement;
    if (text.substr(statement, at - statement).find("__global__") != std::string_view::npos) return true;
  }
  return false;
}

bool split_enabled() {
  const char* value = std::getenv("RWKVC_CUDA_COMPILE_SPLIT");
  return value == nullptr || std::string(value) != "0";
}

// What a definition declares for others ahead of its kernel (a matmul epilogue's store, which
// batched GEMVs of later definitions call): the text before its first `extern "C"`.
std::string_view helpers_of(const ModuleSource::Definition& definition) {
  std::string_view text = definition.text;
  std::size_t kernel = text.find("extern \"C\"");
  return kernel == std::string_view::npos ? std::string_view() : text.substr(0, kernel);
}

// In text() order: kMiscSource, the module's families, then the helpers of each definition; each
// with the names it declares and the earlier ones it uses.
class Sources {
 public:
  explicit Sources(const ModuleSource& module) {
    add(kMiscSource);
    for (const char* family : module.families()) add(family);
    families_end_ = texts_.size();
    for (const ModuleSource::Definition& definition : module.definitions()) add(helpers_of(definition));
  }

  std::size_t size() const { return texts_.size(); }
  std::string_view text(std::size_t s) const { return texts_[s]; }
  // Where the helpers of definition d sit.
  std::size_t helpers(std::size_t d) const { return families_end_ + d; }

  // The sources before `end` that `text` uses, with what they use in turn.
  std::vector<bool> used_by(std::string_view text, std::size_t end) const {
    std::set<std::string_view> words = identifiers(text);
    std::vector<bool> used(texts_.size(), false);
    for (std::size_t s = 0; s < end; ++s) used[s] = uses(words, s);
    // Each source uses only earlier ones: one pass from the last closes the set.
    for (std::size_t s = end; s-- > 0;)
      if (used[s])
        for (std::size_t d : uses_[s]) used[d] = true;
    return used;
  }

  // Every source before `end`.
  std::vector<bool> all_before(std::size_t end) const {
    std::vector<bool> chosen(texts_.size(), false);
    std::fill(chosen.begin(), chosen.begin() + static_cast<std::ptrdiff_t>(end), true);
    return chosen;
  }

  // tuning_defines(), the prelude, the sources chosen (in order), then `tail`.
  std::string program(const std::vector<bool>& chosen, std::string_view tail) const {
    std::string text = tuning_defines() + kPreludeSource;
    for (std::size_t s = 0; s < texts_.size(); ++s)
      if (chosen[s]) text += texts_[s];
    text += tail;
    return text;
  }

 private:
  void add(std::string_view text) {
    std::set<std::string_view> words = identifiers(text);
    std::vector<std::size_t> uses;
    for (std::size_t s = 0; s < texts_.size(); ++s)
      if (this->uses(words, s)) uses.push_back(s);
    texts_.emplace_back(text);
    names_.push_back(top_level_names(text));
    uses_.push_back(std::move(uses));
  }

  bool uses(const std::set<std::string_view>& words, std::size_t s) const {
    for (const std::string& name : names_[s])
      if (words.count(name) > 0) return true;
    return false;
  }

  std::vector<std::string> texts_;
  std::vector<std::set<std::string, std::less<>>> names_;
  std::vector<std::vector<std::size_t>> uses_;
  std::size_t families_end_ = 0;
};

}  // namespace

std::set<std::string, std::less<>> top_level_names(std::string_view text) {
  std::set<std::string, std::less<>> names;
  auto add = [&](std::string_view word) {
    if (!reserved(word)) names.emplace(word);
  };
  int braces = 0, parens = 0;
  bool line_start = true, type_name_next = false;
  for (std::size_t i = 0; i < text.size();) {
    char c = text[i];
    if (c == '\n') {
      line_start = true;
      ++i;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (text.substr(i, 2) == "//") {
      i = text.find('\n', i);
      i = i == std::string_view::npos ? text.size() : i;
    } else if (text.substr(i, 2) == "/*") {
      i = text.find("*/", i + 2);
      i = i == std::string_view::npos ? text.size() : i + 2;
    } else if (c == '"' || c == '\'') {
      for (++i; i < text.size() && text[i] != c; ++i)
        if (text[i] == '\\') ++i;
      ++i;
      line_start = false;
    } else if (c == '#' && line_start) {
      std::size_t at = skip_space(text, i + 1);
      if (word_at(text, at) == "define") {
        at = skip_space(text, at);
        add(word_at(text, at));
      }
      // The rest of the directive, continued lines included.
      while (i < text.size() && text[i] != '\n') i += text[i] == '\\' ? 2 : 1;
    } else if (identifier_start(c)) {
      line_start = false;
      std::string_view word = word_at(text, i);
      if (word == "template") {
        // Its parameter list names nothing outside the template.
        std::size_t at = skip_space(text, i);
        if (at < text.size() && text[at] == '<') {
          int depth = 0;
          for (i = at; i < text.size(); ++i) {
            depth += text[i] == '<' ? 1 : text[i] == '>' ? -1 : 0;
            if (depth == 0) break;
          }
          ++i;
        }
      } else if (braces == 0 && parens == 0) {
        if (word == "struct" || word == "class" || word == "union" || word == "enum") {
          type_name_next = true;
        } else if (type_name_next && !reserved(word)) {
          add(word);
          type_name_next = false;
        } else {
          std::size_t next = skip_space(text, i);
          if (next < text.size() && std::string_view("(=[;,").find(text[next]) != std::string_view::npos) add(word);
        }
      }
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      line_start = false;
      word_at(text, i);
    } else {
      line_start = false;
      braces += c == '{' ? 1 : c == '}' ? -1 : 0;
      parens += c == '(' ? 1 : c == ')' ? -1 : 0;
      if (c == '{' || c == ';') type_name_next = false;
      ++i;
    }
  }
  return names;
}

std::vector<ModulePart> module_parts(const ModuleSource& module) {
  if (!split_enabled()) {
    ModulePart whole{"the kernels", module.text(), {}, ""};
    for (const KernelHandle& handle : module.handles()) whole.kernels.push_back(handle.name);
    return {whole};
  }
  Sources sources(module);
  const std::vector<ModuleSource::Definition>& definitions = module.definitions();

  // Kernels asked for by name only live in the misc kernels, a family, or another kernel's
  // definition; one no text defines goes to the misc part, whose look-up then names it.
  std::size_t families_end = sources.helpers(0);
  std::vector<std::vector<std::string>> in_source(families_end), in_definition(definitions.size());
  for (const KernelHandle& handle : module.handles()) {
    bool defined = false;
    for (const ModuleSource::Definition& definition : definitions) defined = defined || definition.name == handle.name;
    if (defined) continue;
    std::size_t s = 0;
    while (s < families_end && !defines_kernel(sources.text(s), handle.name)) ++s;
    if (s < families_end) {
      in_source[s].push_back(handle.name);
      continue;
    }
    std::size_t d = 0;
    while (d < definitions.size() && !defines_kernel(definitions[d].text, handle.name)) ++d;
    if (d < definitions.size())
      in_definition[d].push_back(handle.name);
    else
      in_source[0].push_back(handle.name);
  }

  std::vector<ModulePart> parts;
  for (std::size_t s = 0; s < families_end; ++s) {
    if (in_source[s].empty()) continue;
    std::vector<bool> chosen = sources.used_by(sources.text(s), s + 1);  // itself included
    std::string name = s == 0 ? "the misc kernels" : fmt::format("the family of kernel '{}'", in_source[s].front());
    parts.push_back({name, sources.program(chosen, ""), in_source[s], ""});
  }
  for (std::size_t d = 0; d < definitions.size(); ++d) {
    const ModuleSource::Definition& definition = definitions[d];
    std::vector<bool> chosen = sources.used_by(definition.text, sources.helpers(d));
    ModulePart part{fmt::format("kernel '{}'", definition.name), sources.program(chosen, definition.text),
                    {definition.name}, ""};
    part.kernels.insert(part.kernels.end(), in_definition[d].begin(), in_definition[d].end());
    std::vector<bool> everything = sources.all_before(sources.helpers(d));
    if (chosen != everything) part.fallback_source = sources.program(everything, definition.text);
    parts.push_back(std::move(part));
  }
  return parts;
}

}  // namespace rwkvc::cuda
