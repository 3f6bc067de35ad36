// Subcommands of the `hilo` tool. Each registers its options on the app and returns the action to run.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <map>
#include <string>

namespace hilo::cli {

using Action = std::function<int()>;

Action add_hisa_command(CLI::App& app);
// quantize, dequantize, inspect (LoRDS / block-wise checkpoints), by subcommand name.
std::map<std::string, Action> add_lords_commands(CLI::App& app);
// perplexity, kld (evaluation of Llama checkpoints), by subcommand name.
std::map<std::string, Action> add_eval_commands(CLI::App& app);

}  // namespace hilo::cli
