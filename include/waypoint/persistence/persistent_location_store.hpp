#pragma once
// A LocationStore that keeps the bindings in memory (every lookup is the in-memory
// store's, O(1)) and hands each change to a BindingWriter: replace() and expiry enqueue
// the AOR's new binding list, written behind in batches.

#include "waypoint/persistence/binding_writer.hpp"
#include "waypoint/registrar/location_store.hpp"

namespace waypoint::persistence {

class PersistentLocationStore final : public registrar::LocationStore {
 public:
  PersistentLocationStore(registrar::InMemoryLocationStore& memory, BindingWriter& writer)
      : memory_(memory), writer_(writer) {}

  std::vector<registrar::Binding> lookup(std::string_view aor) const override {
    return memory_.lookup(aor);
  }
  void replace(std::string_view aor, std::vector<registrar::Binding> bindings) override;
  std::size_t expire(registrar::TimePoint now) override;
  std::optional<registrar::TimePoint> nextExpiry() override { return memory_.nextExpiry(); }
  bool known(std::string_view aor) const override { return memory_.known(aor); }
  std::size_t aorCount() const override { return memory_.aorCount(); }
  std::size_t bindingCount() const override { return memory_.bindingCount(); }
  void forEach(
      const std::function<void(std::string_view aor, const std::vector<registrar::Binding>&)>&
          visit) const override {
    memory_.forEach(visit);
  }

 private:
  registrar::InMemoryLocationStore& memory_;
  BindingWriter& writer_;
};

}  // namespace waypoint::persistence
