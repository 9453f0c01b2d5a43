// Running the rwkvc binary from the end-to-end tests: without a shell (arguments may hold any
// bytes but NUL), stdout and stderr kept apart, in a scratch folder per test process.
#pragma once

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <catch2/catch.hpp>
#include <fmt/format.h>

extern char** environ;

namespace rwkvc::test {

// A folder for this test process's files, removed when the process ends.
inline std::filesystem::path scratch_dir() {
  struct Folder {
    std::filesystem::path path = std::filesystem::path(RWKVC_BINARY_DIR) / fmt::format("e2e-{}", ::getpid());
    Folder() { std::filesystem::create_directories(path); }
    ~Folder() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  };
  static Folder folder;
  return folder.path;
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

struct ToolRun {
  int exit_code;
  std::string out;  // stdout
  std::string err;  // stderr
  std::string output() const { return out + err; }
};

inline ToolRun run_rwkvc(const std::vector<std::string>& args) {
  const auto out = scratch_dir() / "stdout", err = scratch_dir() / "stderr";
  posix_spawn_file_actions_t files;
  posix_spawn_file_actions_init(&files);
  posix_spawn_file_actions_addopen(&files, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&files, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<std::string> all{RWKVC_TOOL};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  int spawned = posix_spawn(&pid, RWKVC_TOOL, &files, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&files);
  REQUIRE(spawned == 0);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, read_file(out), read_file(err)};
}

// Runs `rwkvc ARGUMENTS` through the shell (tests quote arguments themselves); stdout and
// stderr together in `out`.
inline ToolRun run_rwkvc_shell(const std::string& arguments) {
  std::string command = fmt::format("{} {} 2>&1", RWKVC_TOOL, arguments);
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string output;
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  int status = ::pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output, {}};
}

// A World-format vocabulary whose token i is the single byte i (for the 256-token fixtures);
// entries past 255 are two-byte tokens, to make a vocabulary larger than a model's.
inline std::string byte_vocabulary(int entries = 256) {
  auto path = scratch_dir() / fmt::format("bytes{}.txt", entries);
  std::string text;
  for (int i = 0; i < entries; ++i) {
    if (i < 256) text += fmt::format("{} b'\\x{:02x}' 1\n", i, i);
    else text += fmt::format("{} b'\\x{:02x}\\x{:02x}' 2\n", i, i % 256, (i / 7) % 256);
  }
  write_file(path, text);
  return path.string();
}

}  // namespace rwkvc::test
