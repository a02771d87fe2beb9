#pragma once
// A parsed SIP message: the only type outside src/sip that touches a sofia-sip msg_t.
//
// A Message owns its msg_t (and with it the su_home that holds every header). It is
// parsed once on arrival with MSG_DO_EXTRACT_COPY, so serialize() sends every header the
// proxy did not edit exactly as it arrived; edited headers are re-encoded.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct msg_s;  // sofia-sip msg_t

namespace waypoint::sip {

struct ParseLimits {
  std::size_t maxMessageSize = 65536;
};

// One Via header field value (one hop), as far as routing needs it.
struct Via {
  std::string protocol;  // "SIP/2.0/UDP" -> "UDP"
  std::string host;
  std::optional<std::uint16_t> port;
  std::string branch;    // empty when absent
  std::string received;  // empty when absent
  bool hasRport = false;
  std::optional<std::uint16_t> rport;  // value when "rport=N"
};

// A name-addr header (From, To, Contact, Route, Record-Route).
struct NameAddr {
  std::string displayName;
  std::string uri;  // as text, e.g. "sip:alice@example.com;transport=tcp"
  std::string tag;  // From/To only
};

struct Contact {
  bool wildcard = false;  // "Contact: *"
  NameAddr address;
  std::optional<std::uint32_t> expires;  // ;expires= parameter
  std::optional<double> q;
  std::vector<std::string> params;  // every parameter as "name" or "name=value"
};

struct CSeq {
  std::uint32_t number = 0;
  std::string method;
};

// Fields of a parsed SIP URI; text fields are empty when absent.
struct Uri {
  std::string scheme;  // "sip", "sips", "tel"
  std::string user;
  std::string host;
  std::optional<std::uint16_t> port;
  std::string transport;  // ;transport= parameter, lower-case as written
  bool lr = false;
  std::string params;  // every parameter as written, ';'-separated, without the first ';'
};

// The value of a URI parameter in Uri::params ("" for a parameter without a value), or
// nullopt when absent. Names compare case-insensitively.
std::optional<std::string_view> uriParam(std::string_view params, std::string_view name);

// Parses a URI (sip, sips or tel) from text. Never throws.
std::optional<Uri> parseUri(std::string_view text);

class Message;

struct ParseResult;

class Message {
 public:
  // Parses one datagram (or one complete stream frame: the stream framer has cut it at
  // its Content-Length). Leading CR/LF must already be stripped (SOFIA-NOTES trap 2).
  // For a datagram a body longer than Content-Length is truncated, a shorter one is an
  // error (RFC 3261 §18.3). What RFC 3261 allows but sofia's grammar refuses (extension
  // methods of any token characters, a NUL in a quoted-pair) parses all the same and is
  // kept byte for byte; a start line or a continuation line that RFC 3261 does not allow
  // is an error on a parsed message, so that a request can be answered 400.
  static ParseResult parse(std::string_view bytes, const ParseLimits& limits = {});

  // A shallow copy (sofia msg_copy): new header structures, the strings and the bytes
  // shared with this message, which lives on until every copy is gone. nullopt when out
  // of memory.
  std::optional<Message> copy() const;

  Message(Message&& other) noexcept;
  Message& operator=(Message&& other) noexcept;
  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;
  ~Message();

  bool isRequest() const;
  bool isResponse() const { return !isRequest(); }

  // Request line.
  std::string_view method() const;  // "INVITE", or the extension method's name
  std::string requestUri() const;
  std::optional<Uri> requestUriParts() const;
  // Status line.
  int statusCode() const;
  std::string_view reasonPhrase() const;

  std::vector<Via> vias() const;
  std::optional<Via> topVia() const;
  std::optional<NameAddr> from() const;
  std::optional<NameAddr> to() const;
  std::string_view callId() const;  // empty when absent
  std::optional<CSeq> cseq() const;
  std::optional<std::uint32_t> maxForwards() const;
  std::vector<NameAddr> routes() const;
  std::vector<NameAddr> recordRoutes() const;
  std::vector<Contact> contacts() const;
  std::optional<std::uint32_t> expires() const;
  std::optional<std::size_t> contentLength() const;
  std::string_view body() const;
  std::vector<std::string> proxyRequire() const;

  // Every value of a header by name (compact forms accepted), as it is encoded now.
  std::vector<std::string> headerValues(std::string_view name) const;
  bool hasHeader(std::string_view name) const;

  // Edits a proxy needs. Each returns false (and changes nothing) when the message
  // does not allow it, e.g. popVia() on a message without Via.
  bool pushVia(std::string_view value);  // "SIP/2.0/UDP host:port;branch=z9hG4bK..."
  bool popVia();
  // RFC 3261 §18.2.1 / RFC 3581 §4: received= when the source differs from sent-by
  // (always when rport is present), and rport=<port> when the Via asked for it.
  bool setTopViaReceived(std::string_view sourceIp, std::uint16_t sourcePort);
  // Decrements Max-Forwards; inserts "Max-Forwards: <initial>" when missing.
  bool decrementMaxForwards(std::uint32_t initialWhenMissing = 70);
  bool popRoute();
  bool popLastRoute();  // a strict router's Route set (RFC 3261 §16.4)
  bool setRequestUri(std::string_view uri);
  bool pushRecordRoute(std::string_view value);  // "<sip:proxy;lr>"
  bool addHeader(std::string_view name, std::string_view value);
  // Removes every instance of the header and adds one with the value.
  bool setHeader(std::string_view name, std::string_view value);
  bool removeHeader(std::string_view name);
  // Removes the values of a header that `matches` picks (each field as headerValues()
  // gives it); the others stay, in their order. Returns how many were removed.
  std::size_t removeHeaderValues(std::string_view name,
                                 const std::function<bool(std::string_view)>& matches);

  // The message as it goes on the wire.
  std::string serialize() const;

  // The sofia-sip message, for code inside src/sip only.
  msg_s* raw() const { return msg_; }
  // A new, empty SIP message to build into (src/sip only).
  static std::optional<Message> create();

 private:
  explicit Message(msg_s* msg);
  msg_s* msg_ = nullptr;
};

// The outcome of parsing. Three cases:
//  - message, no error: parsed.
//  - error, no message: unparseable; drop the bytes and count them.
//  - message and error: the headers parsed but the message is broken (e.g. the body is
//    shorter than Content-Length); a request gets "400 <error>", a response is dropped.
struct ParseResult {
  std::optional<Message> message;
  std::string error;
};

// A stateless response to a request per RFC 3261 §8.2.6: Via(s), From, To (with a tag
// for status > 100 when the request had none), Call-ID and CSeq copied, Content-Length 0,
// and the extra header lines given ("Name: value" each, no CRLF).
std::string buildResponse(const Message& request, int status, std::string_view reason,
                          std::string_view toTag = {},
                          const std::vector<std::string>& extraHeaders = {});

}  // namespace waypoint::sip
