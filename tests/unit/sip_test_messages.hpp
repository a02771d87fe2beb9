#pragma once
// Sample SIP messages shared by the sip/ unit tests. Every message is spelled out byte
// for byte (CRLF line ends), and each Content-Length is checked against its body at
// compile time, so a typo in a sample cannot masquerade as a parser bug.

#include <cstddef>
#include <string_view>

namespace waypoint::sip::testdata {

using namespace std::string_view_literals;

// The value of the first header line whose name (as written, before the colon) equals
// `name`, parsed as a decimal number; -1 when absent or not a number.
constexpr long headerNumber(std::string_view message, std::string_view name) {
  std::size_t pos = 0;
  while (pos < message.size()) {
    const std::size_t end = message.find("\r\n", pos);
    if (end == std::string_view::npos || end == pos) return -1;  // blank line: headers end
    const std::string_view line = message.substr(pos, end - pos);
    if (line.starts_with(name) && line.size() > name.size() && line[name.size()] == ':') {
      long value = 0;
      bool digits = false;
      for (char c : line.substr(name.size() + 1)) {
        if (c >= '0' && c <= '9') {
          value = value * 10 + (c - '0');
          digits = true;
        } else if (c != ' ' && c != '\t') {
          return -1;
        }
      }
      return digits ? value : -1;
    }
    pos = end + 2;
  }
  return -1;
}

// The bytes after the first blank line.
constexpr std::string_view bodyOf(std::string_view message) {
  const std::size_t blank = message.find("\r\n\r\n");
  return blank == std::string_view::npos ? std::string_view{} : message.substr(blank + 4);
}

constexpr bool contentLengthMatches(std::string_view message, std::string_view name) {
  return headerNumber(message, name) == static_cast<long>(bodyOf(message).size());
}

// An audio offer; 241 bytes.
inline constexpr std::string_view kSdpOffer =
    "v=0\r\n"
    "o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.101\r\n"
    "t=0 0\r\n"
    "m=audio 49172 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n"
    "a=sendrecv\r\n"sv;
static_assert(kSdpOffer.size() == 241);

// A typical INVITE as a phone sends it (about 720 bytes).
inline constexpr std::string_view kInvite =
    "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n"
    "Max-Forwards: 70\r\n"
    "To: Bob <sip:bob@biloxi.example.com>\r\n"
    "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Contact: <sip:alice@pc33.atlanta.example.com:5060;transport=udp>\r\n"
    "Allow: INVITE, ACK, CANCEL, OPTIONS, BYE\r\n"
    "Supported: replaces, timer\r\n"
    "User-Agent: Waypoint-Test-Phone/1.0\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 241\r\n"
    "\r\n"
    "v=0\r\n"
    "o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.101\r\n"
    "t=0 0\r\n"
    "m=audio 49172 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n"
    "a=sendrecv\r\n"sv;
static_assert(contentLengthMatches(kInvite, "Content-Length"));
static_assert(bodyOf(kInvite) == kSdpOffer);
static_assert(kInvite.size() > 650 && kInvite.size() < 800);

// The same call's 180 after one proxy: two Vias, Record-Route, a To tag.
inline constexpr std::string_view kRinging =
    "SIP/2.0 180 Ringing\r\n"
    "Via: SIP/2.0/UDP proxy.example.net:5060;branch=z9hG4bK2d4790.1\r\n"
    "Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport=5062;"
    "received=192.0.2.101\r\n"
    "Record-Route: <sip:proxy.example.net;lr>\r\n"
    "To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"
    "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    "Contact: <sip:bob@192.0.2.4>\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Content-Length: 0\r\n"
    "\r\n"sv;
static_assert(contentLengthMatches(kRinging, "Content-Length"));

// A final response whose reason phrase has a space in it.
inline constexpr std::string_view kBusyHere =
    "SIP/2.0 486 Busy Here\r\n"
    "Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds\r\n"
    "To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"
    "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Content-Length: 0\r\n"
    "\r\n"sv;

// The INVITE again with compact header names (RFC 3261 §7.3.3): v f t i m l c s k.
inline constexpr std::string_view kCompactInvite =
    "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    "v: SIP/2.0/TCP pc33.atlanta.example.com:5070;branch=z9hG4bKcompact1\r\n"
    "Max-Forwards: 69\r\n"
    "t: Bob <sip:bob@biloxi.example.com>\r\n"
    "f: Alice <sip:alice@atlanta.example.com>;tag=88sja8x\r\n"
    "i: 98asjd8@pc33.atlanta.example.com\r\n"
    "CSeq: 8 INVITE\r\n"
    "m: <sip:alice@pc33.atlanta.example.com:5070;transport=tcp>\r\n"
    "s: lunch\r\n"
    "k: timer\r\n"
    "c: application/sdp\r\n"
    "l: 241\r\n"
    "\r\n"
    "v=0\r\n"
    "o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.101\r\n"
    "t=0 0\r\n"
    "m=audio 49172 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n"
    "a=sendrecv\r\n"sv;
static_assert(contentLengthMatches(kCompactInvite, "l"));

// Three Vias: two sharing one header line, one on a line of its own.
inline constexpr std::string_view kThreeViaBye =
    "BYE sip:alice@pc33.atlanta.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP proxy2.example.org;branch=z9hG4bKp2a, "
    "SIP/2.0/TCP proxy1.example.net:5070;branch=z9hG4bKp1a;received=198.51.100.1\r\n"
    "Via: SIP/2.0/UDP 192.0.2.4:5060;branch=z9hG4bKuac1;rport=5060\r\n"
    "Max-Forwards: 68\r\n"
    "From: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"
    "To: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    "CSeq: 231 BYE\r\n"
    "Content-Length: 0\r\n"
    "\r\n"sv;

// A REGISTER with two contacts, q and expires parameters and an Expires header.
inline constexpr std::string_view kRegister =
    "REGISTER sip:registrar.atlanta.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bKnashds7;rport\r\n"
    "Max-Forwards: 70\r\n"
    "To: Alice <sip:alice@atlanta.example.com>\r\n"
    "From: Alice <sip:alice@atlanta.example.com>;tag=456248\r\n"
    "Call-ID: 843817637684230@998sdasdh09\r\n"
    "CSeq: 1826 REGISTER\r\n"
    "Contact: <sip:alice@192.0.2.101:5060>;q=0.7;expires=3600, "
    "<sip:alice@198.51.100.7;transport=tcp>;q=1.0\r\n"
    "Contact: \"Desk\" "
    "<sips:alice@desk.atlanta.example.com:5061>;+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-"
    "000A95A0E128>\"\r\n"
    "Expires: 7200\r\n"
    "Content-Length: 0\r\n"
    "\r\n"sv;

// A REGISTER removing every binding (RFC 3261 §10.2.2).
inline constexpr std::string_view kRegisterWildcard =
    "REGISTER sip:registrar.atlanta.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bKnashds8\r\n"
    "Max-Forwards: 70\r\n"
    "To: Alice <sip:alice@atlanta.example.com>\r\n"
    "From: Alice <sip:alice@atlanta.example.com>;tag=456249\r\n"
    "Call-ID: 843817637684231@998sdasdh09\r\n"
    "CSeq: 1827 REGISTER\r\n"
    "Contact: *\r\n"
    "Expires: 0\r\n"
    "Content-Length: 0\r\n"
    "\r\n"sv;

// An OPTIONS that went through two proxies (Vias on one line and on another), asked of us.
inline constexpr std::string_view kOptions =
    "OPTIONS sip:proxy.example.net SIP/2.0\r\n"
    "Via: SIP/2.0/UDP proxy2.example.org;branch=z9hG4bKopt2, "
    "SIP/2.0/UDP proxy1.example.org:5070;branch=z9hG4bKopt1\r\n"
    "Via: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bKopt0;rport=5062;received=203.0.113.9\r\n"
    "Max-Forwards: 68\r\n"
    "To: <sip:proxy.example.net>\r\n"
    "From: Alice <sip:alice@atlanta.example.com>;tag=opt77\r\n"
    "Call-ID: options-1@192.0.2.101\r\n"
    "CSeq: 63104 OPTIONS\r\n"
    "Accept: application/sdp\r\n"
    "Content-Length: 0\r\n"
    "\r\n"sv;

// An INVITE as it reaches the proxy, written the way real phones write: compact and long
// names, odd case, no space or several spaces after the colon, trailing blanks, two
// Route lines of which the first names the proxy. Edits must leave every line they do
// not touch byte-identical.
inline constexpr std::string_view kOddInvite =
    "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
    "v:SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n"
    "max-forwards:   70\r\n"
    "Route:  <sip:proxy.example.net;lr>\r\n"
    "ROUTE: <sip:edge.biloxi.example.com;lr>\r\n"
    "f: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    "t:<sip:bob@biloxi.example.com>\r\n"
    "cAlL-iD:   a84b4c76e66710@pc33.atlanta.example.com\r\n"
    "CSeq:314159   INVITE\r\n"
    "m: <sip:alice@pc33.atlanta.example.com:5060;transport=udp>\r\n"
    "Subject:   lunch?  \r\n"
    "X-Odd-Header :  keep   this\r\n"
    "c: application/sdp\r\n"
    "l: 241\r\n"
    "\r\n"
    "v=0\r\n"
    "o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\n"
    "s=-\r\n"
    "c=IN IP4 192.0.2.101\r\n"
    "t=0 0\r\n"
    "m=audio 49172 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:0 PCMU/8000\r\n"
    "a=rtpmap:8 PCMA/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n"
    "a=sendrecv\r\n"sv;
static_assert(contentLengthMatches(kOddInvite, "l"));

// A MESSAGE without Max-Forwards, its Via host a bare IP without rport, two Routes in one
// header line and a Record-Route of an earlier proxy.
inline constexpr std::string_view kMessageNoMaxForwards =
    "MESSAGE sip:bob@biloxi.example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.0.2.101:5060;branch=z9hG4bKmsg1\r\n"
    "Route: <sip:proxy.example.net;lr>, <sip:edge.biloxi.example.com;lr>\r\n"
    "Record-Route: <sip:earlier.example.org;lr>\r\n"
    "From: <sip:alice@atlanta.example.com>;tag=m1\r\n"
    "To: <sip:bob@biloxi.example.com>\r\n"
    "Call-ID: msg-1@192.0.2.101\r\n"
    "CSeq: 1 MESSAGE\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 5\r\n"
    "\r\n"
    "hello"sv;
static_assert(contentLengthMatches(kMessageNoMaxForwards, "Content-Length"));

// A 200 on its way back through the proxy: our Via and the caller's on one line.
inline constexpr std::string_view kOkTwoViasOneLine =
    "SIP/2.0 200 OK\r\n"
    "Via: SIP/2.0/UDP proxy.example.net:5060;branch=z9hG4bKproxy1 ,  "
    "SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport=5062;"
    "received=192.0.2.101\r\n"
    "To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"
    "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Contact: <sip:bob@192.0.2.4>\r\n"
    "Content-Length: 0\r\n"
    "\r\n"sv;

}  // namespace waypoint::sip::testdata
