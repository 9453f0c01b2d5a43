// rwkvc: compile and run RWKV models. `rwkvc --help` lists the subcommands.
#include <cstdio>
#include <exception>

#include <fmt/format.h>

#include "tools/commands.h"

int main(int argc, char** argv) {
  CLI::App app{"rwkvc: a tensor compiler and runtime for RWKV language models"};
  app.require_subcommand(1);
  rwkvc::cli::add_init_command(app);
  rwkvc::cli::add_forward_command(app);
  rwkvc::cli::add_ir_command(app);
  rwkvc::cli::add_convert_command(app);
  rwkvc::cli::add_info_command(app);
  rwkvc::cli::add_tokenize_commands(app);
  rwkvc::cli::add_generate_command(app);
  rwkvc::cli::add_bench_command(app);
  rwkvc::cli::add_devices_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    fmt::print(stderr, "rwkvc: error: {}\n", e.what());
    return 1;
  }
  return 0;
}
