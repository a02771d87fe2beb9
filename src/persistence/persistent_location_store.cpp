#include "waypoint/persistence/persistent_location_store.hpp"

namespace waypoint::persistence {

void PersistentLocationStore::replace(std::string_view aor,
                                      std::vector<registrar::Binding> bindings) {
  const std::string key(aor);
  writer_.enqueue(key, bindings);  // a copy for the writer thread
  memory_.replace(key, std::move(bindings));
}

std::size_t PersistentLocationStore::expire(registrar::TimePoint now) {
  return memory_.expire(
      now, [this](const std::string& aor, const std::vector<registrar::Binding>& left) {
        writer_.enqueue(aor, left);
      });
}

}  // namespace waypoint::persistence
