// The rwkvc subcommands; each file cmd_<name>.cpp registers one on the application.
#pragma once

#include <CLI/CLI.hpp>

namespace rwkvc::cli {

void add_init_command(CLI::App& app);
void add_forward_command(CLI::App& app);
void add_ir_command(CLI::App& app);
void add_convert_command(CLI::App& app);
void add_info_command(CLI::App& app);
void add_tokenize_commands(CLI::App& app);  // tokenize and detokenize
void add_generate_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_devices_command(CLI::App& app);

}  // namespace rwkvc::cli
