#pragma once
// A proxy (listening on 203.0.113.1:5060) with its registrar for example.com, on the fake
// clock and sender: what the tests that drive the dispatcher stand on.

#include <memory>

#include "fakes.hpp"
#include "waypoint/proxy/proxy.hpp"
#include "waypoint/registrar/location_store.hpp"
#include "waypoint/registrar/registrar.hpp"

namespace waypoint::testkit {

struct ProxyRig {
  ProxyRig() {
    identity.addListener(transport::Protocol::udp, endpoint("203.0.113.1", 5060));
    proxy = std::make_unique<proxy::Proxy>(clock, sender, transaction::LayerSettings{}, identity,
                                           registrar, proxy::ProxySettings{});
  }
  // A UDP message from address:port to the proxy.
  static transport::Source from(const char* address, std::uint16_t port = 5060) {
    return transport::Source{transport::Protocol::udp, endpoint("203.0.113.1", 5060),
                             endpoint(address, port), 0};
  }

  FakeClock clock;
  FakeSender sender{clock};
  proxy::LocalIdentity identity;
  registrar::InMemoryLocationStore store;
  registrar::Registrar registrar{store, {"example.com"}, registrar::RegistrarSettings{}};
  std::unique_ptr<proxy::Proxy> proxy;
};

}  // namespace waypoint::testkit
