// hilo: long-context, low-bit LLM inference. `hilo --help` lists the subcommands.
#include <cstdio>

#include "commands.hpp"
#include "hilo/error.hpp"

int main(int argc, char** argv) {
  CLI::App app{"hilo: fast long-context, low-bit LLM inference (HISA sparse-attention indexer, LoRDS quantization)"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "hilo 0.1.0");
  const hilo::cli::Action hisa = hilo::cli::add_hisa_command(app);
  auto commands = hilo::cli::add_lords_commands(app);
  commands.merge(hilo::cli::add_eval_commands(app));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    if (app.got_subcommand("hisa")) return hisa();
    for (const auto& [name, action] : commands)
      if (app.got_subcommand(name)) return action();
  } catch (const hilo::Error& e) {
    std::fprintf(stderr, "hilo: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hilo: internal error: %s\n", e.what());
    return 2;
  }
  return 0;
}
