#pragma once
// What every stream connection (TCP, TLS, WS, WSS) is to the connection table
// and to the transports that own it, whatever byte stream it runs over. Private to
// src/transport.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

#include "transport_host.hpp"

namespace waypoint::transport {

enum class ConnectionState : std::uint8_t {
  connecting,   // an outgoing connection before its TCP handshake completed
  handshaking,  // TLS or WebSocket handshake under way
  open,
  closed,
};

// Why a connection was closed by us; counted in TransportCounters.
enum class CloseReason : std::uint8_t {
  peer,
  idle,
  establishTimeout,
  oversize,
  framing,
  backpressure,
  shutdown,
  refused,  // a handshake we answered with an error (counted where it is refused)
  error
};

class Connection {
 public:
  Connection(std::uint64_t id, Protocol protocol, Endpoint local, Endpoint remote,
             ConnectionState state, SteadyTime now)
      : id_(id),
        protocol_(protocol),
        local_(local),
        remote_(remote),
        state_(state),
        stateSince_(now),
        lastPeerActivity_(now) {}
  virtual ~Connection() = default;
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Opaque outside the transports: a later several-loops design may encode the loop in it.
  std::uint64_t id() const { return id_; }
  Protocol protocol() const { return protocol_; }
  // The listener's endpoint for an accepted connection, the socket's local endpoint for
  // one we opened.
  const Endpoint& local() const { return local_; }
  const Endpoint& remote() const { return remote_; }
  ConnectionState state() const { return state_; }
  SteadyTime stateSince() const { return stateSince_; }
  // The last time the peer sent us bytes; our own writes do not count.
  SteadyTime lastPeerActivity() const { return lastPeerActivity_; }
  std::size_t queuedBytes() const { return queuedBytes_; }

  // Queues bytes; a failure (later) is reported to onError through the host.
  virtual void send(const Destination& destination, std::string bytes,
                    SendErrorHandler onError) = 0;
  // Closes the stream and leaves the table; queued sends are reported as failed with
  // reason when it is set.
  virtual void close(CloseReason why, std::error_code reason = {}) = 0;

  // Something the stream needs for as long as it exists (a TLS connection's context): a
  // base member, so it is released after the stream of the derived connection.
  void holdForLife(std::shared_ptr<const void> resource) { resource_ = std::move(resource); }

 protected:
  void setState(ConnectionState state, SteadyTime now) {
    state_ = state;
    stateSince_ = now;
  }
  void setLocal(const Endpoint& local) { local_ = local; }
  void notePeerActivity(SteadyTime now) { lastPeerActivity_ = now; }
  std::size_t queuedBytes_ = 0;

 private:
  std::uint64_t id_;
  Protocol protocol_;
  Endpoint local_;
  Endpoint remote_;
  ConnectionState state_;
  SteadyTime stateSince_;
  SteadyTime lastPeerActivity_;
  std::shared_ptr<const void> resource_;
};

}  // namespace waypoint::transport
