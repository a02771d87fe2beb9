#include "waypoint/registrar/registrar.hpp"

#include <algorithm>
#include <boost/asio/ip/address.hpp>

#include "waypoint/sip/text.hpp"

namespace waypoint::registrar {

namespace {

std::string paramValue(const std::vector<std::string>& params, std::string_view name) {
  for (const std::string& p : params) {
    const std::size_t eq = p.find('=');
    if (sip::lowerAscii(std::string_view(p).substr(0, eq)) == name)
      return eq == std::string::npos ? std::string() : p.substr(eq + 1);
  }
  return {};
}

// Two bindings are the same when RFC 5626 says so (same instance and reg-id) or, for
// clients without an instance, when their contact URIs are the same (§10.3 step 7).
bool sameBinding(const Binding& a, const Binding& b) {
  if (!a.instance.empty() || !b.instance.empty())
    return a.instance == b.instance && a.regId == b.regId;
  return sip::lowerAscii(a.contact) == sip::lowerAscii(b.contact);
}

std::string contactLine(const Binding& b, TimePoint now) {
  // Rounded up: a binding stored for 600 s says 600 until a whole second has passed.
  const auto left = std::chrono::ceil<std::chrono::seconds>(b.expiresAt - now).count();
  std::string line =
      "Contact: <" + b.contact + ">;expires=" + std::to_string(std::max<long long>(left, 0));
  if (b.qMilli != 1000) {
    char q[32];
    std::snprintf(q, sizeof q, "%d.%03d", b.qMilli / 1000, b.qMilli % 1000);
    std::string text(q);
    while (text.back() == '0') text.pop_back();
    if (text.back() == '.') text.pop_back();
    line += ";q=" + text;
  }
  if (!b.instance.empty()) line += ";+sip.instance=" + b.instance;
  if (!b.regId.empty()) line += ";reg-id=" + b.regId;
  return line;
}

bool isPrivate(const boost::asio::ip::address& address) {
  if (address.is_v4()) {
    const auto bits = address.to_v4().to_uint();
    const auto in = [bits](std::uint32_t network, int prefix) {
      return (bits >> (32 - prefix)) == (network >> (32 - prefix));
    };
    return in(0x0A000000, 8) || in(0xAC100000, 12) || in(0xC0A80000, 16) || in(0x64400000, 10) ||
           in(0xA9FE0000, 16);
  }
  const auto bytes = address.to_v6().to_bytes();
  return (bytes[0] & 0xfe) == 0xfc || (bytes[0] == 0xfe && (bytes[1] & 0xc0) == 0x80);
}

std::string canonicalAorOf(const sip::Uri& uri) {
  if ((uri.scheme != "sip" && uri.scheme != "sips") || uri.host.empty()) return {};
  std::string aor = "sip:";
  if (!uri.user.empty()) aor.append(uri.user).append("@");
  aor.append(sip::lowerAscii(uri.host));
  if (uri.port) aor.append(":").append(std::to_string(*uri.port));  // §19.1.4: the port counts
  return aor;
}

}  // namespace

std::string canonicalAor(std::string_view text) {
  const auto uri = sip::parseUri(text);
  return uri ? canonicalAorOf(*uri) : std::string();
}

Registrar::Registrar(LocationStore& store, std::set<std::string> domains,
                     RegistrarSettings settings)
    : store_(store), settings_(settings) {
  for (const auto& d : domains) domains_.insert(sip::lowerAscii(d));
}

void Registrar::setLimits(const RegistrarSettings& limits) {
  settings_.minExpires = limits.minExpires;
  settings_.maxExpires = limits.maxExpires;
  settings_.defaultExpires = limits.defaultExpires;
  settings_.maxContacts = limits.maxContacts;
}

bool Registrar::servesDomain(std::string_view host) const {
  return domains_.count(sip::lowerAscii(host)) != 0;
}

std::optional<std::string> Registrar::domainOf(const sip::Uri& uri) const {
  if (servesDomain(uri.host)) return sip::lowerAscii(uri.host);
  if (!settings_.defaultDomain.empty() && settings_.isThisServer && settings_.isThisServer(uri)) {
    return settings_.defaultDomain;
  }
  return std::nullopt;
}

std::string Registrar::aorOf(std::string_view text) const {
  const auto uri = sip::parseUri(text);
  return uri ? aorOf(*uri) : std::string();
}

std::string Registrar::aorOf(const sip::Uri& uri) const {
  if (servesDomain(uri.host) || uri.user.empty()) return canonicalAorOf(uri);
  const auto domain = domainOf(uri);
  if (!domain) return canonicalAorOf(uri);
  return "sip:" + uri.user + "@" + *domain;
}

RegistrarReply Registrar::reject(int status, std::string reason, std::vector<std::string> headers) {
  ++counters_.registersRejected;
  return RegistrarReply{status, std::move(reason), std::move(headers)};
}

void Registrar::expire(TimePoint now) { counters_.bindingsExpired += store_.expire(now); }

RegistrarReply Registrar::handle(const sip::Message& request, const transport::Source& source,
                                 TimePoint now) {
  // Step 1: the Request-URI names a domain we keep bindings for.
  const auto target = request.requestUriParts();
  if (!target || !domainOf(*target)) return reject(404, "Domain Not Served");
  // Step 2: Require (§8.2.2.3); of the extensions a registrar cares about, only Path.
  std::vector<std::string> unsupported;
  for (const std::string& option : request.headerValues("Require")) {
    for (std::size_t start = 0; start <= option.size();) {
      std::size_t comma = option.find(',', start);
      if (comma == std::string::npos) comma = option.size();
      std::string token = sip::lowerAscii(option.substr(start, comma - start));
      token.erase(0, token.find_first_not_of(" \t"));
      token.erase(token.find_last_not_of(" \t") + 1);
      if (!token.empty() && token != "path") unsupported.push_back(token);
      start = comma + 1;
    }
  }
  if (!unsupported.empty()) {
    std::string list;
    for (const auto& u : unsupported) list += (list.empty() ? "" : ", ") + u;
    return reject(420, "Bad Extension", {"Unsupported: " + list});
  }
  // Step 5: the address-of-record, from To, in the same domain.
  const auto to = request.to();
  const auto toUri = to ? sip::parseUri(to->uri) : std::nullopt;
  const std::string aor = to ? aorOf(to->uri) : std::string();
  if (aor.empty() || !toUri || !domainOf(*toUri)) return reject(404, "Not Found");

  const std::string callId(request.callId());
  const std::uint32_t cseq = request.cseq()->number;
  const auto contacts = request.contacts();
  std::vector<Binding> bindings = store_.lookup(aor);
  const auto headerExpires = request.expires();

  if (!contacts.empty()) {
    // Steps 6-7: a REGISTER older than one already applied for this Call-ID (a delayed
    // or reordered request) changes nothing, whichever contacts it names.
    for (const Binding& b : bindings) {
      if (b.callId == callId && b.cseq >= cseq) return reject(500, "Out Of Order CSeq");
    }
    // Step 6: "Contact: *" removes everything, alone and only with Expires: 0.
    const bool wildcard = std::any_of(contacts.begin(), contacts.end(),
                                      [](const sip::Contact& c) { return c.wildcard; });
    if (wildcard) {
      if (contacts.size() != 1 || !headerExpires || *headerExpires != 0) {
        return reject(400, "Wildcard Contact Needs Expires 0 And No Other Contact");
      }
      for (const Binding& b : bindings) {
        if (b.callId == callId && b.cseq >= cseq) return reject(500, "Out Of Order CSeq");
      }
      bindings.clear();
    } else {
      // Step 7: every contact, all or nothing. A contact that is this server would send
      // every request for the AOR back here: a loop by construction.
      if (settings_.isThisServer) {
        for (const sip::Contact& c : contacts) {
          const auto uri = sip::parseUri(c.address.uri);
          if (uri && settings_.isThisServer(*uri)) {
            return reject(403, "Contact Must Not Point To This Server");
          }
        }
      }
      std::vector<std::string> path = request.headerValues("Path");
      for (const sip::Contact& c : contacts) {
        std::uint64_t seconds = c.expires ? *c.expires
                                : headerExpires
                                    ? *headerExpires
                                    : static_cast<std::uint64_t>(settings_.defaultExpires.count());
        if (seconds != 0 && seconds < static_cast<std::uint64_t>(settings_.minExpires.count())) {
          return reject(423, "Interval Too Brief",
                        {"Min-Expires: " + std::to_string(settings_.minExpires.count())});
        }
        seconds = std::min<std::uint64_t>(seconds,
                                          static_cast<std::uint64_t>(settings_.maxExpires.count()));
        Binding binding;
        binding.contact = c.address.uri;
        binding.qMilli = c.q ? static_cast<int>(std::clamp(*c.q, 0.0, 1.0) * 1000 + 0.5) : 1000;
        binding.callId = callId;
        binding.cseq = cseq;
        binding.expiresAt = now + std::chrono::seconds(seconds);
        binding.instance = paramValue(c.params, "+sip.instance");
        binding.regId = paramValue(c.params, "reg-id");
        binding.path = path;
        binding.flow = source;
        binding.behindNat = contactBehindNat(binding.contact, request, source);
        auto existing = std::find_if(bindings.begin(), bindings.end(),
                                     [&](const Binding& b) { return sameBinding(b, binding); });
        if (existing != bindings.end()) {
          if (existing->callId == callId && existing->cseq >= cseq)
            return reject(500, "Out Of Order CSeq");
          if (seconds == 0) {
            bindings.erase(existing);
          } else {
            *existing = std::move(binding);
          }
        } else if (seconds != 0) {
          bindings.push_back(std::move(binding));
        }
      }
      if (bindings.size() > settings_.maxContacts) {
        return reject(403,
                      "Too Many Contacts (at most " + std::to_string(settings_.maxContacts) + ")");
      }
    }
    store_.replace(aor, bindings);
  }

  // Step 8: every current binding, with what is left of its time.
  ++counters_.registersAccepted;
  RegistrarReply reply;
  for (const Binding& b : bindings) {
    if (b.expiresAt > now) reply.headers.push_back(contactLine(b, now));
  }
  // RFC 3327 §5.3: the Path goes back only to a UA that said it supports it.
  bool pathSupported = false;
  for (const std::string& s : request.headerValues("Supported")) {
    if (sip::lowerAscii(s).find("path") != std::string::npos) pathSupported = true;
  }
  if (pathSupported) {
    for (const std::string& p : request.headerValues("Path")) reply.headers.push_back("Path: " + p);
  }
  return reply;
}

bool contactBehindNat(std::string_view contactUri, const sip::Message& request,
                      const transport::Source& source) {
  const auto contact = sip::parseUri(contactUri);
  const auto address = contact ? transport::parseIpAddress(contact->host) : std::nullopt;
  if (!address) return true;
  const bool sameAsSource =
      *address == source.remote.address && contact->port.value_or(5060) == source.remote.port;
  if (sameAsSource) return false;
  const auto via = request.topVia();
  const auto viaAddress = via ? transport::parseIpAddress(via->host) : std::nullopt;
  const bool viaIsSource = viaAddress && *viaAddress == source.remote.address &&
                           via->port.value_or(5060) == source.remote.port;
  return !viaIsSource || isPrivate(*address);
}

}  // namespace waypoint::registrar
