#pragma once
// The responses the proxy makes itself (RFC 3261 §8.2.6): a fresh To tag and the
// configured Server header, if any. For every part of the proxy and the dispatcher's 400s.

#include <string>
#include <string_view>
#include <vector>

#include "waypoint/proxy/identifiers.hpp"
#include "waypoint/proxy/proxy_counters.hpp"
#include "waypoint/sip/message.hpp"
#include "waypoint/transaction/transaction_layer.hpp"

namespace waypoint::proxy {

class Responder {
 public:
  Responder(Identifiers& ids, std::string serverHeader, ProxyCounters& counters)
      : ids_(ids), serverHeader_(std::move(serverHeader)), counters_(counters) {}

  std::string response(const sip::Message& request, int status, std::string_view reason,
                       std::vector<std::string> extraHeaders = {}) {
    if (!serverHeader_.empty()) extraHeaders.push_back("Server: " + serverHeader_);
    return sip::buildResponse(request, status, reason, ids_.tag(), extraHeaders);
  }
  // Answers a server transaction with a response made here (counted).
  void respond(transaction::TransactionLayer& layer, transaction::TransactionId server,
               const sip::Message& request, int status, std::string_view reason,
               std::vector<std::string> extraHeaders = {}) {
    ++counters_.responsesGenerated;
    layer.respond(server, status, response(request, status, reason, std::move(extraHeaders)));
  }

 private:
  Identifiers& ids_;
  std::string serverHeader_;
  ProxyCounters& counters_;
};

}  // namespace waypoint::proxy
