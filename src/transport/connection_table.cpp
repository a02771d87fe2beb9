#include "connection_table.hpp"

#include <algorithm>

namespace waypoint::transport {

std::size_t FlowKeyHash::operator()(const FlowKey& key) const noexcept {
  return std::hash<Endpoint>()(key.remote) * 31 + static_cast<std::size_t>(key.protocol);
}

bool ConnectionTable::admits(const boost::asio::ip::address& source,
                             const TransportSettings& settings) const {
  if (byId_.size() >= settings.maxConnections) return false;
  const auto it = perSource_.find(source);
  return it == perSource_.end() || it->second < settings.maxConnectionsPerSource;
}

void ConnectionTable::add(const std::shared_ptr<Connection>& connection) {
  byId_.emplace(connection->id(), connection);
  byFlow_[FlowKey{connection->protocol(), connection->remote()}].push_back(connection->id());
  ++perSource_[connection->remote().address];
}

void ConnectionTable::remove(const Connection& connection) {
  const auto it = byId_.find(connection.id());
  if (it == byId_.end()) return;
  const auto flow = byFlow_.find(FlowKey{connection.protocol(), connection.remote()});
  if (flow != byFlow_.end()) {
    std::erase(flow->second, connection.id());
    if (flow->second.empty()) byFlow_.erase(flow);
  }
  const auto perSource = perSource_.find(connection.remote().address);
  if (perSource != perSource_.end() && --perSource->second == 0) perSource_.erase(perSource);
  byId_.erase(it);
}

std::shared_ptr<Connection> ConnectionTable::find(const Destination& destination) const {
  if (destination.connectionId != 0) {
    const auto it = byId_.find(destination.connectionId);
    if (it != byId_.end() && it->second->protocol() == destination.protocol) return it->second;
  }
  const auto flow = byFlow_.find(FlowKey{destination.protocol, destination.remote});
  if (flow == byFlow_.end()) return nullptr;
  std::shared_ptr<Connection> newest;
  for (const std::uint64_t id : flow->second) {
    const auto& connection = byId_.at(id);
    if (destination.local && connection->local() == *destination.local) return connection;
    newest = connection;
  }
  return newest;
}

std::vector<std::shared_ptr<Connection>> ConnectionTable::expired(
    SteadyTime now, const TransportSettings& settings) const {
  std::vector<std::shared_ptr<Connection>> result;
  for (const auto& [id, connection] : byId_) {
    switch (connection->state()) {
      case ConnectionState::connecting:
        if (now - connection->stateSince() >= settings.tcpConnectTimeout)
          result.push_back(connection);
        break;
      case ConnectionState::handshaking:
        if (now - connection->stateSince() >= settings.handshakeTimeout)
          result.push_back(connection);
        break;
      case ConnectionState::open:
        if (now - connection->lastPeerActivity() >= settings.tcpIdleTimeout) {
          result.push_back(connection);
        }
        break;
      case ConnectionState::closed:
        break;
    }
  }
  return result;
}

std::vector<std::shared_ptr<Connection>> ConnectionTable::all() const {
  std::vector<std::shared_ptr<Connection>> result;
  result.reserve(byId_.size());
  for (const auto& [id, connection] : byId_) result.push_back(connection);
  return result;
}

}  // namespace waypoint::transport
