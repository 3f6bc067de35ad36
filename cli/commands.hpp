// Subcommands of the `hilo` tool. Each registers its options on the app and returns the action to run.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace hilo::cli {

using Action = std::function<int()>;

Action add_hisa_command(CLI::App& app);

}  // namespace hilo::cli
