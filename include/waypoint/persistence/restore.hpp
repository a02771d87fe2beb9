#pragma once
// Start-up replay: which stored bindings come back, and how. A binding returns with the
// time it had left (wall clock on disk -> steady clock in memory). UDP bindings keep
// their flow (same local socket, same remote address: a phone behind NAT stays reachable
// while its NAT mapping lives). TCP and TLS connections died with the old process: a
// binding whose Contact can be reached directly comes back addressed to the Contact
// (connection 0); one behind NAT waits for its re-REGISTER. WebSocket bindings never
// come back: nobody can connect to a browser.

#include <cstddef>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "waypoint/persistence/binding_writer.hpp"

namespace waypoint::persistence {

enum class DropReason { expired, websocket, streamBehindNat, contactUnreachable };
std::string_view toString(DropReason reason);  // "expired", "websocket", ...

std::variant<registrar::Binding, DropReason> restoredBinding(const StoredBinding& stored,
                                                             WallTime wallNow,
                                                             registrar::TimePoint steadyNow);

struct RestoreReport {
  std::size_t bindings = 0;
  std::size_t aors = 0;
  std::size_t dropped = 0;
  std::map<DropReason, std::size_t> droppedBy;
  // "3 expired, 1 websocket"; "" when nothing was dropped.
  std::string droppedText() const;
};

// Puts what comes back into memory; AORs that lost bindings are queued on the writer so
// that the file soon holds what memory does.
RestoreReport restoreInto(const std::vector<StoredAor>& stored, const Clocks& clocks,
                          registrar::InMemoryLocationStore& memory, BindingWriter& writer);

}  // namespace waypoint::persistence
