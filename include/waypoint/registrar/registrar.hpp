#pragma once
// REGISTER processing, RFC 3261 §10.3 (with Path, RFC 3327, and +sip.instance/reg-id,
// RFC 5626). Sans-I/O: takes the request, where it came from and the time, and returns
// the response to send; the bindings live in a LocationStore.

#include <array>
#include <chrono>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "waypoint/metrics/metric.hpp"
#include "waypoint/registrar/location_store.hpp"
#include "waypoint/sip/message.hpp"

namespace waypoint::registrar {

struct RegistrarSettings {
  std::chrono::seconds minExpires{60};
  std::chrono::seconds maxExpires{3600};
  std::chrono::seconds defaultExpires{3600};
  std::size_t maxContacts = 10;  // per AOR
  // The domain of requests and registrations addressed to the server itself
  // (sip:bob@<server address>): phones set up with the server's address as their domain.
  // Empty: such requests belong to no domain.
  std::string defaultDomain;
  // Whether a URI names this server: one of its addresses or names, and a port it listens
  // on (5060/5061 when the URI has none). Unset: nothing does.
  std::function<bool(const sip::Uri&)> isThisServer;
};

// What to answer: status, reason, and header lines ("Name: value") for the response.
struct RegistrarReply {
  int status = 200;
  std::string reason = "OK";
  std::vector<std::string> headers;
};

// What the registrar did; registrarMetrics below declares them.
struct RegistrarCounters {
  std::uint64_t registersAccepted = 0;
  std::uint64_t registersRejected = 0;
  std::uint64_t bindingsExpired = 0;
};

inline constexpr std::array registrarMetrics{
    metrics::Metric<RegistrarCounters>::counter("registrar_registers_accepted",
                                                "REGISTER requests accepted (answered 200)",
                                                &RegistrarCounters::registersAccepted),
    metrics::Metric<RegistrarCounters>::counter("registrar_registers_rejected",
                                                "REGISTER requests the registrar refused",
                                                &RegistrarCounters::registersRejected),
    metrics::Metric<RegistrarCounters>::counter("registrar_bindings_expired",
                                                "Bindings dropped because they expired",
                                                &RegistrarCounters::bindingsExpired),
};

// The size of the location service now, read from the store when metrics are rendered.
struct RegistrarGauges {
  std::uint64_t aors = 0;
  std::uint64_t bindings = 0;
};

inline constexpr std::array registrarGaugeMetrics{
    metrics::Metric<RegistrarGauges>::gauge(
        "registrar_aors", "Addresses of record with a binding now", &RegistrarGauges::aors),
    metrics::Metric<RegistrarGauges>::gauge("registrar_bindings", "Bindings (contacts) now",
                                            &RegistrarGauges::bindings),
};

// "sip:user@host[:port]" with the host lower-cased, escapes resolved and every parameter
// dropped (§10.3 step 5); sips AORs share the binding of sip. Empty when the URI is not a
// sip/sips URI with a host.
std::string canonicalAor(std::string_view uri);

// Whether requests for a contact must go to the flow it registered over rather than to
// the Contact's address: the phone sits behind NAT when its Contact is not an IP address
// we can send to, or differs from the packet's source while either the Via's sent-by also
// differs from the source or the Contact holds a private address (RFC 1918, RFC 6598,
// link-local, IPv6 ULA). A Contact that differs only by port, with a Via matching the
// source, is a third-party or multi-socket registration: it is reached at the Contact.
bool contactBehindNat(std::string_view contactUri, const sip::Message& request,
                      const transport::Source& source);

class Registrar {
 public:
  Registrar(LocationStore& store, std::set<std::string> domains, RegistrarSettings settings);

  RegistrarReply handle(const sip::Message& request, const transport::Source& source,
                        TimePoint now);
  // Drops expired bindings (called by the daemon's timer at store().nextExpiry()).
  void expire(TimePoint now);

  bool servesDomain(std::string_view host) const;
  // The served domain a URI belongs to: its host when that is served, the default domain
  // when the URI names this server itself, otherwise nullopt.
  std::optional<std::string> domainOf(const sip::Uri& uri) const;
  // canonicalAor() with the host replaced by domainOf() when the URI names this server.
  std::string aorOf(std::string_view uri) const;
  std::string aorOf(const sip::Uri& uri) const;  // on every routed request: parsed once
  LocationStore& store() { return store_; }
  const RegistrarCounters& counters() const { return counters_; }
  RegistrarGauges gauges() const { return {store_.aorCount(), store_.bindingCount()}; }
  const RegistrarSettings& settings() const { return settings_; }
  // A reload: the expiry limits and max contacts of `limits` apply to the next REGISTER;
  // the domain settings stay (they need a restart).
  void setLimits(const RegistrarSettings& limits);

 private:
  RegistrarReply reject(int status, std::string reason, std::vector<std::string> headers = {});

  LocationStore& store_;
  std::set<std::string> domains_;  // lower-case
  RegistrarSettings settings_;
  RegistrarCounters counters_;
};

}  // namespace waypoint::registrar
