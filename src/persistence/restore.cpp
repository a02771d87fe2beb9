#include "waypoint/persistence/restore.hpp"

#include "waypoint/sip/message.hpp"

namespace waypoint::persistence {

std::string_view toString(DropReason reason) {
  switch (reason) {
    case DropReason::expired:
      return "expired";
    case DropReason::websocket:
      return "websocket";
    case DropReason::streamBehindNat:
      return "connection behind NAT";
    case DropReason::contactUnreachable:
      return "contact not an address";
  }
  return "unknown";
}

std::variant<registrar::Binding, DropReason> restoredBinding(const StoredBinding& stored,
                                                             WallTime wallNow,
                                                             registrar::TimePoint steadyNow) {
  const auto left = stored.expiresAt - wallNow;
  if (left <= WallTime::duration::zero()) return DropReason::expired;
  registrar::Binding binding = stored.binding;
  binding.expiresAt = steadyNow + std::chrono::duration_cast<registrar::TimePoint::duration>(left);
  binding.flow.connectionId = 0;
  const auto protocol = binding.flow.protocol;
  if (protocol == transport::Protocol::ws || protocol == transport::Protocol::wss) {
    return DropReason::websocket;
  }
  if (protocol == transport::Protocol::udp) return binding;
  if (binding.behindNat) return DropReason::streamBehindNat;
  // The stored remote is the phone's ephemeral source port; a new connection goes to the
  // Contact.
  const auto uri = sip::parseUri(binding.contact);
  const auto address = uri ? transport::parseIpAddress(uri->host) : std::nullopt;
  if (!address) return DropReason::contactUnreachable;
  const bool secure = protocol == transport::Protocol::tls;
  binding.flow.remote =
      transport::Endpoint{*address, uri->port.value_or(secure ? std::uint16_t{5061} : 5060)};
  return binding;
}

std::string RestoreReport::droppedText() const {
  std::string text;
  for (const auto& [reason, count] : droppedBy) {
    text.append(text.empty() ? "" : ", ").append(std::to_string(count)).append(" ");
    text.append(toString(reason));
  }
  return text;
}

RestoreReport restoreInto(const std::vector<StoredAor>& stored, const Clocks& clocks,
                          registrar::InMemoryLocationStore& memory, BindingWriter& writer) {
  RestoreReport report;
  const WallTime wallNow = clocks.wall();
  const registrar::TimePoint steadyNow = clocks.steady();
  for (const auto& aor : stored) {
    std::vector<registrar::Binding> bindings;
    for (const auto& binding : aor.bindings) {
      auto decision = restoredBinding(binding, wallNow, steadyNow);
      if (auto* kept = std::get_if<registrar::Binding>(&decision)) {
        bindings.push_back(std::move(*kept));
      } else {
        ++report.dropped;
        ++report.droppedBy[std::get<DropReason>(decision)];
      }
    }
    if (bindings.size() != aor.bindings.size()) writer.enqueue(aor.aor, bindings);
    if (bindings.empty()) continue;
    report.bindings += bindings.size();
    ++report.aors;
    memory.replace(aor.aor, std::move(bindings));
  }
  return report;
}

}  // namespace waypoint::persistence
