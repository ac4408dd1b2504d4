// Backend selection by name.
#include "engine/backend/backend.h"

#include "core/error.h"
#include "engine/backend/host.h"

namespace tessera::engine {

std::shared_ptr<Backend> make_backend(const std::string& name) {
  if (name == "cpu") return make_cpu_backend();
  if (name == "ref") return make_ref_backend();
  throw_error("unknown backend '{}' (this build has: cpu, ref)", name);
}

}  // namespace tessera::engine
