#pragma once
// Every open stream connection, by id and by flow: (protocol, remote endpoint, local
// listener), so a TLS and a TCP connection from the same address never mix. The only way
// the rest of the daemon reaches a connection (through a Destination). Private to
// src/transport.

#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <unordered_map>
#include <vector>

#include "connection.hpp"

namespace waypoint::transport {

struct FlowKey {
  Protocol protocol = Protocol::tcp;
  Endpoint remote;
  friend bool operator==(const FlowKey&, const FlowKey&) = default;
};

struct FlowKeyHash {
  std::size_t operator()(const FlowKey& key) const noexcept;
};

class ConnectionTable {
 public:
  std::uint64_t nextId() { return nextId_++; }

  // Whether one more connection from this source fits the per-source and global limits.
  bool admits(const boost::asio::ip::address& source, const TransportSettings& settings) const;

  void add(const std::shared_ptr<Connection>& connection);
  void remove(const Connection& connection);

  // The connection a destination names: its connection id when still open and of the same
  // protocol; else one to the same remote over the same protocol (from the given local
  // endpoint when there is one, else the newest); else null.
  std::shared_ptr<Connection> find(const Destination& destination) const;

  // Connections that waited too long to be established, or whose peer has been silent
  // for the idle timeout.
  std::vector<std::shared_ptr<Connection>> expired(SteadyTime now,
                                                   const TransportSettings& settings) const;

  std::vector<std::shared_ptr<Connection>> all() const;
  std::size_t size() const { return byId_.size(); }
  bool empty() const { return byId_.empty(); }

 private:
  std::unordered_map<std::uint64_t, std::shared_ptr<Connection>> byId_;
  // Every connection of a flow (one remote over one protocol, from any local listener).
  std::unordered_map<FlowKey, std::vector<std::uint64_t>, FlowKeyHash> byFlow_;
  std::map<boost::asio::ip::address, std::size_t> perSource_;
  std::uint64_t nextId_ = 1;
};

}  // namespace waypoint::transport
