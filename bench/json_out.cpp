#include "json_out.hpp"

#include <cstdio>
#include <exception>

#include "core/atomic_file.hpp"

namespace hilo::bench {

void save_json(const std::string& path, const nlohmann::json& doc, int indent) {
  AtomicFile file(path);
  const std::string text = doc.dump(indent) + "\n";
  file.write(text.data(), text.size());
  file.commit();
}

bool write_json(const std::string& path, const nlohmann::json& doc, int indent) {
  try {
    save_json(path, doc, indent);
    return true;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "--json: cannot write %s: %s\n", path.c_str(), e.what());
    return false;
  }
}

}  // namespace hilo::bench
