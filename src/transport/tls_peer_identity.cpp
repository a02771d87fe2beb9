#include "waypoint/transport/tls_peer_identity.hpp"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <optional>
#include <vector>

#include "openssl_handles.hpp"
#include "waypoint/transport/address.hpp"

namespace waypoint::transport {

namespace {

// RFC 5922 §7.2: whole, case-insensitive, a trailing root dot on either side ignored.
std::string_view withoutRootDot(std::string_view name) {
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  return name;
}

bool equalsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower(b[i])) return false;
  }
  return true;
}

bool sameDomain(std::string_view identity, std::string_view host) {
  identity = withoutRootDot(identity);
  return !identity.empty() && equalsIgnoringCase(identity, withoutRootDot(host));
}

std::string_view text(const ASN1_STRING* string) {
  return {reinterpret_cast<const char*>(ASN1_STRING_get0_data(string)),
          static_cast<std::size_t>(ASN1_STRING_length(string))};
}

// RFC 5922 §7.1 step 1: the host part of "sip:host[:port][;params]" with no user part;
// nullopt for any other URI (another scheme, "sips:", a user part).
std::optional<std::string_view> sipUriDomain(std::string_view uri) {
  if (uri.size() < 4 || !equalsIgnoringCase(uri.substr(0, 4), "sip:")) return std::nullopt;
  std::string_view rest = uri.substr(4);
  rest = rest.substr(0, rest.find_first_of(";?"));
  if (rest.find('@') != std::string_view::npos) return std::nullopt;
  if (const auto colon = rest.rfind(':');
      colon != std::string_view::npos && rest.find(']') == std::string_view::npos) {
    rest = rest.substr(0, colon);
  }
  return rest;
}

bool matchesAddress(const GENERAL_NAMES* names, const boost::asio::ip::address& address) {
  std::vector<unsigned char> wanted;
  if (address.is_v4()) {
    const auto bytes = address.to_v4().to_bytes();
    wanted.assign(bytes.begin(), bytes.end());
  } else {
    const auto bytes = address.to_v6().to_bytes();
    wanted.assign(bytes.begin(), bytes.end());
  }
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_IPADD) continue;
    const ASN1_OCTET_STRING* bytes = name->d.iPAddress;
    if (static_cast<std::size_t>(ASN1_STRING_length(bytes)) == wanted.size() &&
        std::equal(wanted.begin(), wanted.end(), ASN1_STRING_get0_data(bytes))) {
      return true;
    }
  }
  return false;
}

bool matchesDomain(const GENERAL_NAMES* names, std::string_view host) {
  bool anySipUri = false;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type != GEN_URI) continue;
    if (const auto domain = sipUriDomain(text(name->d.uniformResourceIdentifier))) {
      anySipUri = true;
      if (sameDomain(*domain, host)) return true;
    }
  }
  // §7.1: a DNS entry is an identity "if and only if" no sip: URI identity is present.
  if (anySipUri) return false;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    if (name->type == GEN_DNS && sameDomain(text(name->d.dNSName), host)) return true;
  }
  return false;
}

// §7.1 step 2, for certificates without subjectAltName: the last (most specific) CN.
bool matchesCommonName(X509* certificate, std::string_view host) {
  const X509_NAME* subject = X509_get_subject_name(certificate);
  int last = -1;
  for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) >= 0;) last = i;
  if (last < 0) return false;
  const ASN1_STRING* value = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, last));
  unsigned char* utf8 = nullptr;
  const int size = ASN1_STRING_to_UTF8(&utf8, value);
  if (size < 0) return false;
  const bool matches =
      sameDomain(std::string_view(reinterpret_cast<const char*>(utf8), size), host);
  OPENSSL_free(utf8);
  return matches;
}

}  // namespace

bool matchesSipDomain(X509* certificate, std::string_view host) {
  if (certificate == nullptr || host.empty()) return false;
  const auto address = parseIpAddress(host);
  detail::GeneralNamesHandle names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr)));
  if (address) return names && matchesAddress(names.get(), *address);
  if (names) return matchesDomain(names.get(), host);
  return matchesCommonName(certificate, host);
}

bool SipDomainVerifier::operator()(bool preverified,
                                   boost::asio::ssl::verify_context& context) const {
  X509_STORE_CTX* store = context.native_handle();
  if (!preverified) return false;
  // Called once per certificate of the chain, the root first; the name is the server's.
  if (X509_STORE_CTX_get_error_depth(store) != 0) return true;
  if (matchesSipDomain(X509_STORE_CTX_get_current_cert(store), host_)) return true;
  X509_STORE_CTX_set_error(store, X509_V_ERR_HOSTNAME_MISMATCH);
  return false;
}

bool setServerName(SSL* ssl, std::string_view host) {
  if (parseIpAddress(host)) return true;
  const std::string name(withoutRootDot(host));
  if (name.empty()) return false;
  return SSL_set_tlsext_host_name(ssl, name.c_str()) == 1;
}

}  // namespace waypoint::transport
