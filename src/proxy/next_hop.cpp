#include "waypoint/proxy/next_hop.hpp"

#include <charconv>

#include "waypoint/sip/text.hpp"

namespace waypoint::proxy {

namespace {

std::string uriTransportParam(transport::Protocol protocol) {
  return protocol == transport::Protocol::udp
             ? std::string()
             : ";transport=" + sip::lowerAscii(transport::toString(protocol));
}

}  // namespace

std::optional<transport::Destination> resolveNumeric(const sip::Uri& uri) {
  if (uri.scheme != "sip" && uri.scheme != "sips") return std::nullopt;
  const auto address = transport::parseIpAddress(uri.host);
  if (!address) return std::nullopt;
  transport::Destination destination;
  destination.protocol = uri.scheme == "sips" ? transport::Protocol::tls : transport::Protocol::udp;
  if (!uri.transport.empty()) {
    const auto protocol = transport::protocolFromString(uri.transport);
    if (!protocol) return std::nullopt;
    destination.protocol = *protocol;
  }
  const bool secure = destination.protocol == transport::Protocol::tls ||
                      destination.protocol == transport::Protocol::wss;
  destination.remote = transport::Endpoint{*address, uri.port.value_or(secure ? 5061 : 5060)};
  return destination;
}

std::string encodeFlow(const Flow& flow) {
  std::string token = sip::lowerAscii(transport::toString(flow.protocol));
  token.append("~")
      .append(transport::toString(flow.remote.address))
      .append("~")
      .append(std::to_string(flow.remote.port));
  return token;
}

std::optional<Flow> decodeFlow(std::string_view token) {
  const std::size_t first = token.find('~');
  const std::size_t second = first == std::string_view::npos ? first : token.find('~', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  const auto protocol = transport::protocolFromString(token.substr(0, first));
  const auto address = transport::parseIpAddress(token.substr(first + 1, second - first - 1));
  const std::string_view portText = token.substr(second + 1);
  std::uint16_t port = 0;
  auto [end, ec] = std::from_chars(portText.data(), portText.data() + portText.size(), port);
  if (!protocol || !address || ec != std::errc() || end != portText.data() + portText.size() ||
      port == 0) {
    return std::nullopt;
  }
  return Flow{*protocol, transport::Endpoint{*address, port}};
}

std::string Interface::hostPortOf() const {
  return advertised.empty() ? transport::toString(local) : advertised;
}

std::vector<std::string> recordRouteValues(const Interface& callerSide, const Interface& calleeSide,
                                           std::string_view tokenParams, bool sips) {
  auto value = [tokenParams, sips](const Interface& side) {
    std::string v = sips ? "<sips:" : "<sip:";
    v.append(side.hostPortOf())
        .append(uriTransportParam(side.protocol))
        .append(";lr")
        .append(tokenParams);
    v.append(">");
    return v;
  };
  if (callerSide == calleeSide) return {value(callerSide)};
  return {value(calleeSide), value(callerSide)};
}

std::string viaValue(const Interface& out, std::string_view branch) {
  std::string via = "SIP/2.0/";
  via.append(transport::toString(out.protocol)).append(" ").append(out.hostPortOf());
  via.append(";branch=").append(branch);
  return via;
}

}  // namespace waypoint::proxy
