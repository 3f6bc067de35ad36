// Benchmark results as JSON files, written whole or not at all (hilo::AtomicFile): an interrupted or failed run
// never leaves a truncated file for the tables and plots to read.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace hilo::bench {

// doc at `path`, indented by `indent`; throws hilo::Error where it cannot be written.
void save_json(const std::string& path, const nlohmann::json& doc, int indent = 1);

// The same for a benchmark's --json option: false, with a message on stderr naming the file, where it cannot be
// written.
bool write_json(const std::string& path, const nlohmann::json& doc, int indent = 1);

}  // namespace hilo::bench
