#pragma once
// Whose certificate a TLS server showed us: RFC 5922 (Domain Certificates in SIP) checks
// that an outgoing connection reached the SIP domain (or address) we meant to reach.

#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/ssl/verify_context.hpp>
#include <boost/system/error_code.hpp>
#include <string>
#include <string_view>

namespace waypoint::transport {

// RFC 5922 §7.1 and §7.2: whether `certificate` is that of `host`, the SIP domain or host
// of the Request-URI or Route we connect for.
// - A host name matches the host part of a subjectAltName URI "sip:<host>" without a user
//   part; only when there is no such URI, a subjectAltName DNS entry; only when the
//   certificate has no subjectAltName at all, the subject's (most specific) CN.
// - Names compare whole and without case; "*.example.com" matches no host (wildcards are
//   not accepted for SIP domains), nor does "example.com" match "a.example.com".
// - An address ("192.0.2.1", "::1", "[::1]") matches a subjectAltName IP entry only.
bool matchesSipDomain(X509* certificate, std::string_view host);

// The OpenSSL verify callback for an outgoing connection: the chain must verify (as
// OpenSSL found it) and the server's certificate must match the host (matchesSipDomain).
// A mismatch fails the handshake with X509_V_ERR_HOSTNAME_MISMATCH as verify result.
// SSL_set1_host is not used: it knows neither sip: URIs nor the rule that CN counts only
// without any subjectAltName.
class SipDomainVerifier {
 public:
  explicit SipDomainVerifier(std::string host) : host_(std::move(host)) {}
  bool operator()(bool preverified, boost::asio::ssl::verify_context& context) const;

 private:
  std::string host_;
};

// Names the host in the ClientHello (SNI, RFC 6066 §3), unless it is an address, which SNI
// does not carry. False when OpenSSL refuses the name (longer than 255 bytes, say).
bool setServerName(SSL* ssl, std::string_view host);

// Prepares a stream made from a client context before its handshake: SNI for the host,
// and with verifyPeer (TlsSettings::verifyPeer) the RFC 5922 check of the server's
// certificate against it. False when the stream cannot be set up for that host.
template <class NextLayer>
bool prepareClientStream(boost::asio::ssl::stream<NextLayer>& stream, std::string_view host,
                         bool verifyPeer) {
  if (!setServerName(stream.native_handle(), host)) return false;
  if (!verifyPeer) return true;
  boost::system::error_code error;
  stream.set_verify_mode(boost::asio::ssl::verify_peer, error);
  if (!error) stream.set_verify_callback(SipDomainVerifier(std::string(host)), error);
  return !error;
}

}  // namespace waypoint::transport
