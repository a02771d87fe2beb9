#include "waypoint/sip/message.hpp"

#include <strings.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstring>
#include <utility>

#include "content_length.hpp"
#include "grammar_masks.hpp"
#include "sofia.hpp"

namespace waypoint::sip {

using detail::view;

namespace detail {

std::string urlText(const url_t* url) {
  if (url == nullptr) return {};
  const isize_t length = url_e(nullptr, 0, url);
  if (length <= 0) return {};
  std::string text(static_cast<std::size_t>(length) + 1, '\0');
  url_e(text.data(), static_cast<isize_t>(text.size()), url);
  text.resize(static_cast<std::size_t>(length));
  return text;
}

msg_hclass_t* knownHeaderClass(std::string_view name) {
  if (name.empty() || name.size() > 64) return nullptr;
  const std::string text(name);
  isize_t contentStart = 0;  // where a value would start in "Name: value"; unused here
  const msg_href_t* href = msg_find_hclass(sip_default_mclass(), text.c_str(), &contentStart);
  if (href == nullptr || href->hr_class == nullptr || href->hr_class == sip_unknown_class)
    return nullptr;
  msg_hclass_t* hc = href->hr_class;
  const bool fullName = hc->hc_name != nullptr && strcasecmp(hc->hc_name, text.c_str()) == 0;
  const bool compactName = hc->hc_short[0] != '\0' && text.size() == 1 &&
                           std::tolower(static_cast<unsigned char>(hc->hc_short[0])) ==
                               std::tolower(static_cast<unsigned char>(text[0]));
  return fullName || compactName ? hc : nullptr;
}

// Encoded into a buffer of our own, grown until the value fits: sip_header_as_string()
// returned bytes it never wrote for a long Via (0xbe fill under ASan).
// sofia's parameter encoders (Authorization's auth-params among them) stop at the last
// parameter that fits and report the shorter length, as if nothing were missing. Only a
// result that fills less than half the buffer is known whole: the room left is larger
// than any one parameter could be.
std::string headerValueText(msg_t*, const msg_header_t* header) {
  std::string text(512, '\0');
  for (;;) {
    const issize_t length = msg_header_field_e(text.data(), text.size(), header, 0);
    if (length < 0) return {};
    if (static_cast<std::size_t>(length) * 2 < text.size()) {
      text.resize(static_cast<std::size_t>(length));
      return text;
    }
    text.assign(text.size() * 2, '\0');
  }
}

}  // namespace detail

namespace {

msg_pub_t* pub(msg_t* msg) { return reinterpret_cast<msg_pub_t*>(sip_object(msg)); }

std::optional<std::uint16_t> portOf(const char* text) {
  if (text == nullptr || *text == '\0') return std::nullopt;
  unsigned value = 0;
  const std::string_view s(text);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size() || value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

std::optional<std::uint32_t> uintOf(std::string_view s) {
  std::uint32_t value = 0;
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end == s.data()) return std::nullopt;
  return value;
}

NameAddr nameAddrOf(const char* display, const url_t* url, const char* tag) {
  NameAddr result;
  result.displayName = std::string(view(display));
  result.uri = detail::urlText(url);
  result.tag = std::string(view(tag));
  return result;
}

template <typename Header>
std::vector<NameAddr> routeList(const Header* first) {
  std::vector<NameAddr> result;
  for (const Header* r = first; r != nullptr; r = r->r_next) {
    result.push_back(nameAddrOf(r->r_display, r->r_url, nullptr));
  }
  return result;
}

// Where a datagram's header section ends (CRLF CRLF, or LF LF for LF-only senders), and
// its first Content-Length header as written.
struct DatagramLayout {
  std::size_t bodyStart = std::string_view::npos;
  bool hasLength = false;
  bool lengthValid = false;
  std::size_t length = 0;
  std::size_t nameStart = 0;  // of the Content-Length header name, for renaming it
  std::size_t nameLength = 0;
};

DatagramLayout layoutOf(std::string_view bytes) {
  DatagramLayout layout;
  std::size_t pos = bytes.find('\n');  // skip the start line
  while (pos != std::string_view::npos && pos + 1 < bytes.size()) {
    const std::size_t lineStart = pos + 1;
    std::size_t eol = bytes.find('\n', lineStart);
    if (eol == std::string_view::npos) eol = bytes.size();
    std::string_view line = bytes.substr(lineStart, eol - lineStart);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {
      layout.bodyStart = std::min(eol + 1, bytes.size());
      return layout;
    }
    pos = eol;
    if (layout.hasLength) continue;
    const auto length = detail::contentLengthLine(line);
    if (!length) continue;
    layout.hasLength = true;
    layout.nameStart = lineStart;
    layout.nameLength = length->nameLength;
    layout.length = length->value.value_or(0);
    // sofia keeps Content-Length in 32 bits: a longer number is malformed, not just large.
    layout.lengthValid = length->value && *length->value <= 0xffffffffu;
  }
  return layout;
}

bool isSipVersion(const char* version) {
  return version != nullptr && std::strncmp(version, "SIP/", 4) == 0;
}

// One sofia parse of a complete datagram. nullptr (with a reason) when it fails.
msg_t* extract(std::string_view input, const detail::GrammarMasks& masks, std::string& error) {
  msg_t* msg = msg_create(sip_default_mclass(), MSG_DO_EXTRACT_COPY);
  if (msg == nullptr) {
    error = "Out of memory";
    return nullptr;
  }
  // SOFIA-NOTES trap 1: every message gets a maxsize; our own limit was checked already.
  msg_maxsize(msg, static_cast<usize_t>(input.size() + 4096));
  // The parsed headers come out of one preloaded block instead of a malloc each
  // (SOFIA-NOTES "Cost"); a large message overflows into the heap as before.
  su_home_preload(msg_home(msg), 1, static_cast<isize_t>(4 * input.size()));
  void* buffer = msg_buf_alloc(msg, input.size() + 1);
  if (buffer == nullptr) {
    msg_destroy(msg);
    error = "Out of memory";
    return nullptr;
  }
  std::memcpy(buffer, input.data(), input.size());
  detail::applyGrammarMasks(static_cast<char*>(buffer), masks);
  msg_buf_commit(msg, input.size(), 1);
  const int extracted = msg_extract(msg);
  sip_t* sip = sip_object(msg);
  // SOFIA-NOTES trap 3: 0 at the end of the input is an error too.
  if (extracted != 1 || sip == nullptr ||
      (sip->sip_request == nullptr && sip->sip_status == nullptr)) {
    msg_destroy(msg);
    error = extracted == 0 ? "Incomplete message" : "Unparseable message";
    return nullptr;
  }
  const bool sip2 = sip->sip_request ? isSipVersion(sip->sip_request->rq_version)
                                     : isSipVersion(sip->sip_status->st_version);
  if (!sip2) {
    msg_destroy(msg);
    error = "Not a SIP message";
    return nullptr;
  }
  if ((sip->sip_flags & MSG_FLG_BODY) == 0) {
    msg_destroy(msg);
    error = "Truncated message: no empty line after the headers";
    return nullptr;
  }
  // The parsed headers are sofia's own copies; the buffer is what goes out again
  // (MSG_DO_EXTRACT_COPY), so it gets its original bytes back. msg_extract() may have
  // moved the buffer (su_realloc): it now starts where the start line's raw bytes do.
  if (!masks.ranges.empty()) {
    const msg_common_t* startLine =
        sip->sip_request ? sip->sip_request->rq_common : sip->sip_status->st_common;
    char* moved = static_cast<char*>(const_cast<void*>(startLine->h_data));
    detail::restoreGrammarMasks(moved != nullptr ? moved : static_cast<char*>(buffer), masks);
  }
  su_home_t* home = msg_home(msg);
  if (!masks.requestMethod.empty() && sip->sip_request != nullptr)
    sip->sip_request->rq_method_name = su_strdup(home, masks.requestMethod.c_str());
  if (!masks.cseqMethod.empty() && sip->sip_cseq != nullptr)
    sip->sip_cseq->cs_method_name = su_strdup(home, masks.cseqMethod.c_str());
  return msg;
}

// "METHOD sip:invalid.invalid SIP/x.y\r\n" for a request whose start line is a method
// token, something, and a SIP version; empty for anything else.
std::string standInRequestLine(std::string_view bytes) {
  std::string_view line = bytes.substr(0, bytes.find('\n'));
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  const std::size_t first = line.find(' ');
  const std::size_t last = line.rfind(' ');
  if (first == std::string_view::npos || first == 0 || last <= first) return {};
  const std::string_view method = line.substr(0, first);
  const std::string_view version = line.substr(last + 1);
  if (method.starts_with("SIP/") || !version.starts_with("SIP/") ||
      method.find_first_of(" \t<>\"\0") != std::string_view::npos)
    return {};
  return std::string(method) + " sip:invalid.invalid " + std::string(version) + "\r\n";
}

// The fields of a URI sofia has decoded (url_d): of the message's own Request-URI, or of
// text parsed on the stack.
std::optional<Uri> uriOf(const url_t* url) {
  if (url == nullptr ||
      (url->url_type != url_sip && url->url_type != url_sips && url->url_type != url_tel)) {
    return std::nullopt;
  }
  Uri uri;
  uri.scheme = std::string(view(url->url_scheme));
  uri.user = std::string(view(url->url_user));
  uri.host = std::string(view(url->url_host));
  uri.port = portOf(url->url_port);
  if (url->url_port != nullptr && !uri.port) return std::nullopt;  // not a port number
  if (url->url_params != nullptr) {
    // Our own reader, not url_param()/url_has_param(): sofia's reads past the end of
    // some parameter strings (found by fuzzing: "sip:bob@host;lr>,x").
    uri.params = url->url_params;
    if (const auto transport = uriParam(uri.params, "transport"))
      uri.transport = std::string(*transport);
    uri.lr = uriParam(uri.params, "lr").has_value();
  }
  return uri;
}

}  // namespace

std::optional<Uri> parseUri(std::string_view text) {
  if (text.empty() || text.size() > 4096 || text.find('\0') != std::string_view::npos)
    return std::nullopt;
  // What url_make() does, without its su_home and its copy: sofia's decoder cuts the
  // text it is given in place, so it works on a copy on the stack.
  std::array<char, 4097> buffer;
  std::memcpy(buffer.data(), text.data(), text.size());
  buffer[text.size()] = '\0';
  url_t url[1] = {};
  if (url_d(url, buffer.data()) < 0) return std::nullopt;
  return uriOf(url);
}

std::optional<std::string_view> uriParam(std::string_view params, std::string_view name) {
  while (!params.empty()) {
    const std::size_t end = std::min(params.find(';'), params.size());
    const std::string_view param = params.substr(0, end);
    const std::size_t equals = std::min(param.find('='), param.size());
    const std::string_view key = param.substr(0, equals);
    if (key.size() == name.size() && strncasecmp(key.data(), name.data(), key.size()) == 0) {
      return equals < param.size() ? param.substr(equals + 1) : std::string_view();
    }
    params.remove_prefix(std::min(end + 1, params.size()));
  }
  return std::nullopt;
}

ParseResult Message::parse(std::string_view bytes, const ParseLimits& limits) {
  ParseResult result;
  if (bytes.empty()) {
    result.error = "Empty message";
    return result;
  }
  if (bytes.size() > limits.maxMessageSize) {
    result.error = "Message larger than " + std::to_string(limits.maxMessageSize) + " bytes";
    return result;
  }
  if (bytes.front() == '\r' || bytes.front() == '\n') {
    result.error = "Leading CR/LF";  // the transport strips keepalive CRLFs first
    return result;
  }
  const DatagramLayout layout = layoutOf(bytes);
  if (layout.bodyStart == std::string_view::npos) {
    result.error = "Truncated message: no empty line after the headers";
    return result;
  }
  // sofia takes a CR alone as a line end, so a header line "\r4" would end its header block
  // where ours does not; the message it made serialized into bytes that no longer parse
  // (found by fuzz_core, issue 8: the proxy could then never answer the INVITE).
  for (std::size_t cr = bytes.find('\r'); cr < layout.bodyStart; cr = bytes.find('\r', cr + 1)) {
    if (cr + 1 >= bytes.size() || bytes[cr + 1] != '\n') {
      result.error = "Bare CR in headers";
      return result;
    }
  }
  // A Content-Length that is not a number, or promises more than the datagram holds, is
  // fatal to sofia. Parse the headers with it renamed, so a request can still be answered
  // "400 <problem>" (RFC 3261 §18.3); the message is never forwarded.
  std::string renamed;
  std::string_view input = bytes;
  std::string lengthError;
  const std::size_t bodyAvailable = bytes.size() - layout.bodyStart;
  if (layout.hasLength && (!layout.lengthValid || layout.length > bodyAvailable)) {
    lengthError =
        layout.lengthValid ? "Body shorter than Content-Length" : "Malformed Content-Length";
    renamed.reserve(bytes.size() + 16);
    renamed.append(bytes.substr(0, layout.nameStart)).append("X-Invalid-Content-Length");
    renamed.append(bytes.substr(layout.nameStart + layout.nameLength,
                                layout.bodyStart - layout.nameStart - layout.nameLength));
    input = renamed;  // no body: a 400 does not need it
  }
  // SOFIA-NOTES traps 3 and 7: what sofia cannot read but RFC 3261 allows is masked.
  const detail::GrammarMasks masks =
      detail::findGrammarMasks(input, renamed.empty() ? layout.bodyStart : input.size());
  if (masks.strayNul) {
    result.error = "NUL byte in headers";
    return result;
  }
  msg_t* msg = extract(input, masks, result.error);
  if (msg == nullptr) {
    // sofia refuses a Request-Line with blanks inside its URI (RFC 4475 §3.1.2.8) and
    // gives up on the whole message. Its headers still allow a 400: they are parsed once
    // more behind a stand-in Request-Line, and the message is never forwarded.
    std::string standIn = standInRequestLine(input);
    if (standIn.empty()) return result;
    standIn.append(input.substr(std::min(input.find('\n') + 1, input.size())));
    const std::size_t bodyLength = input.size() - std::min(layout.bodyStart, input.size());
    const detail::GrammarMasks standInMasks =
        detail::findGrammarMasks(standIn, standIn.size() - bodyLength);
    std::string ignored;
    msg = extract(standIn, standInMasks, ignored);
    if (msg == nullptr) return result;
    result.message.emplace(Message(msg));
    result.error = "Malformed Request-Line";
    return result;
  }
  result.message.emplace(Message(msg));
  result.error = lengthError;
  // RFC 3261 §7.3.1: a line starting with SP or HTAB continues the header field above it;
  // right after the start line there is none. sofia would take it as part of the start
  // line's message, so the request is refused here (it has its headers for the 400).
  const std::size_t secondLine = bytes.find('\n') + 1;
  if (result.error.empty() && secondLine < layout.bodyStart &&
      (bytes[secondLine] == ' ' || bytes[secondLine] == '\t')) {
    result.error = "Continuation line after the start line";
  }
  return result;
}

Message::Message(msg_s* msg) : msg_(msg) {}
Message::Message(Message&& other) noexcept : msg_(std::exchange(other.msg_, nullptr)) {}

std::optional<Message> Message::copy() const {
  msg_t* copied = msg_copy(msg_);
  if (copied == nullptr) return std::nullopt;
  return Message(copied);
}

std::optional<Message> Message::create() {
  msg_t* msg = msg_create(sip_default_mclass(), 0);
  if (msg == nullptr) return std::nullopt;
  return Message(msg);
}
Message& Message::operator=(Message&& other) noexcept {
  if (this != &other) {
    if (msg_ != nullptr) msg_destroy(msg_);
    msg_ = std::exchange(other.msg_, nullptr);
  }
  return *this;
}
Message::~Message() {
  if (msg_ != nullptr) msg_destroy(msg_);
}

bool Message::isRequest() const { return sip_object(msg_)->sip_request != nullptr; }

std::string_view Message::method() const {
  const sip_t* sip = sip_object(msg_);
  return sip->sip_request ? view(sip->sip_request->rq_method_name) : std::string_view();
}

std::string Message::requestUri() const {
  const sip_t* sip = sip_object(msg_);
  return sip->sip_request ? detail::urlText(sip->sip_request->rq_url) : std::string();
}

std::optional<Uri> Message::requestUriParts() const {
  const sip_t* sip = sip_object(msg_);
  if (sip->sip_request == nullptr) return std::nullopt;
  // Decoded once already, when the message (or setRequestUri) parsed it.
  return uriOf(sip->sip_request->rq_url);
}

int Message::statusCode() const {
  const sip_t* sip = sip_object(msg_);
  return sip->sip_status ? sip->sip_status->st_status : 0;
}

std::string_view Message::reasonPhrase() const {
  const sip_t* sip = sip_object(msg_);
  return sip->sip_status ? view(sip->sip_status->st_phrase) : std::string_view();
}

namespace {
Via viaOf(const sip_via_t* v) {
  Via via;
  const std::string_view protocol = view(v->v_protocol);
  const std::size_t slash = protocol.rfind('/');
  via.protocol =
      std::string(slash == std::string_view::npos ? protocol : protocol.substr(slash + 1));
  via.host = std::string(view(v->v_host));
  via.port = portOf(v->v_port);
  via.branch = std::string(view(v->v_branch));
  via.received = std::string(view(v->v_received));
  via.hasRport = v->v_rport != nullptr;
  via.rport = portOf(v->v_rport);
  return via;
}
}  // namespace

std::vector<Via> Message::vias() const {
  std::vector<Via> result;
  for (const sip_via_t* v = sip_object(msg_)->sip_via; v != nullptr; v = v->v_next) {
    result.push_back(viaOf(v));
  }
  return result;
}

std::optional<Via> Message::topVia() const {
  const sip_via_t* v = sip_object(msg_)->sip_via;
  if (v == nullptr) return std::nullopt;
  return viaOf(v);
}

std::optional<NameAddr> Message::from() const {
  const sip_from_t* f = sip_object(msg_)->sip_from;
  if (f == nullptr) return std::nullopt;
  return nameAddrOf(f->a_display, f->a_url, f->a_tag);
}

std::optional<NameAddr> Message::to() const {
  const sip_to_t* t = sip_object(msg_)->sip_to;
  if (t == nullptr) return std::nullopt;
  return nameAddrOf(t->a_display, t->a_url, t->a_tag);
}

std::string_view Message::callId() const {
  const sip_call_id_t* id = sip_object(msg_)->sip_call_id;
  return id ? view(id->i_id) : std::string_view();
}

std::optional<CSeq> Message::cseq() const {
  const sip_cseq_t* cs = sip_object(msg_)->sip_cseq;
  if (cs == nullptr) return std::nullopt;
  return CSeq{cs->cs_seq, std::string(view(cs->cs_method_name))};
}

std::optional<std::uint32_t> Message::maxForwards() const {
  const sip_max_forwards_t* mf = sip_object(msg_)->sip_max_forwards;
  if (mf == nullptr) return std::nullopt;
  return static_cast<std::uint32_t>(std::min<unsigned long>(mf->mf_count, UINT32_MAX));
}

std::vector<NameAddr> Message::routes() const { return routeList(sip_object(msg_)->sip_route); }

std::vector<NameAddr> Message::recordRoutes() const {
  return routeList(sip_object(msg_)->sip_record_route);
}

std::vector<Contact> Message::contacts() const {
  std::vector<Contact> result;
  for (const sip_contact_t* m = sip_object(msg_)->sip_contact; m != nullptr; m = m->m_next) {
    Contact contact;
    contact.wildcard = m->m_url->url_type == url_any;
    contact.address = nameAddrOf(m->m_display, m->m_url, nullptr);
    if (m->m_expires != nullptr) contact.expires = uintOf(m->m_expires);
    if (m->m_q != nullptr) {
      char* end = nullptr;
      const double q = std::strtod(m->m_q, &end);
      if (end != m->m_q) contact.q = q;
    }
    for (const msg_param_t* p = m->m_params; p != nullptr && *p != nullptr; ++p) {
      contact.params.emplace_back(*p);
    }
    result.push_back(std::move(contact));
  }
  return result;
}

std::optional<std::uint32_t> Message::expires() const {
  const sip_expires_t* ex = sip_object(msg_)->sip_expires;
  if (ex == nullptr) return std::nullopt;
  return static_cast<std::uint32_t>(ex->ex_delta);
}

std::optional<std::size_t> Message::contentLength() const {
  const sip_content_length_t* l = sip_object(msg_)->sip_content_length;
  if (l == nullptr) return std::nullopt;
  return l->l_length;
}

std::string_view Message::body() const {
  const sip_payload_t* pl = sip_object(msg_)->sip_payload;
  if (pl == nullptr || pl->pl_data == nullptr) return {};
  std::size_t length = pl->pl_len;
  if (const auto declared = contentLength()) length = std::min(length, *declared);
  return std::string_view(pl->pl_data, length);
}

std::vector<std::string> Message::proxyRequire() const {
  std::vector<std::string> result;
  const sip_proxy_require_t* pr = sip_object(msg_)->sip_proxy_require;
  for (; pr != nullptr; pr = pr->k_next) {
    for (const msg_param_t* item = pr->k_items; item != nullptr && *item != nullptr; ++item) {
      result.emplace_back(*item);
    }
  }
  return result;
}

namespace {

bool sameName(const char* a, std::string_view b) {
  return a != nullptr && std::strlen(a) == b.size() && strncasecmp(a, b.data(), b.size()) == 0;
}

}  // namespace

std::vector<std::string> Message::headerValues(std::string_view name) const {
  std::vector<std::string> result;
  sip_t* sip = sip_object(msg_);
  if (msg_hclass_t* hc = detail::knownHeaderClass(name)) {
    msg_header_t** slot =
        msg_hclass_offset(sip_default_mclass(), reinterpret_cast<msg_pub_t*>(sip), hc);
    for (msg_header_t* h = slot ? *slot : nullptr; h != nullptr; h = h->sh_next) {
      result.push_back(detail::headerValueText(msg_, h));
    }
    return result;
  }
  for (const sip_unknown_t* u = sip->sip_unknown; u != nullptr; u = u->un_next) {
    if (sameName(u->un_name, name)) result.emplace_back(view(u->un_value));
  }
  return result;
}

bool Message::hasHeader(std::string_view name) const { return !headerValues(name).empty(); }

bool Message::pushVia(std::string_view value) {
  sip_via_t* via = sip_via_make(msg_home(msg_), std::string(value).c_str());
  if (via == nullptr) return false;
  return msg_header_insert(msg_, pub(msg_), reinterpret_cast<msg_header_t*>(via)) == 0;
}

bool Message::popVia() {
  sip_t* sip = sip_object(msg_);
  if (sip->sip_via == nullptr) return false;
  return msg_header_remove(msg_, pub(msg_), reinterpret_cast<msg_header_t*>(sip->sip_via)) == 0;
}

bool Message::setTopViaReceived(std::string_view sourceIp, std::uint16_t sourcePort) {
  sip_via_t* via = sip_object(msg_)->sip_via;
  if (via == nullptr) return false;
  const bool hasRport = via->v_rport != nullptr;
  const bool hostDiffers = view(via->v_host) != sourceIp;
  if (!hasRport && !hostDiffers) return true;
  // sofia keeps the parameter string itself, so it must live in the message's home.
  su_home_t* home = msg_home(msg_);
  const std::string received = "received=" + std::string(sourceIp);
  if (msg_header_replace_param(home, via->v_common, su_strdup(home, received.c_str())) < 0)
    return false;
  if (hasRport) {
    const std::string rport = "rport=" + std::to_string(sourcePort);
    if (msg_header_replace_param(home, via->v_common, su_strdup(home, rport.c_str())) < 0)
      return false;
  }
  msg_fragment_clear(via->v_common);
  return true;
}

bool Message::decrementMaxForwards(std::uint32_t initialWhenMissing) {
  sip_max_forwards_t* mf = sip_object(msg_)->sip_max_forwards;
  if (mf == nullptr) {
    return addHeader("Max-Forwards", std::to_string(initialWhenMissing));
  }
  if (mf->mf_count == 0) return false;
  mf->mf_count -= 1;
  msg_fragment_clear(mf->mf_common);
  return true;
}

bool Message::popRoute() {
  sip_t* sip = sip_object(msg_);
  if (sip->sip_route == nullptr) return false;
  return msg_header_remove(msg_, pub(msg_), reinterpret_cast<msg_header_t*>(sip->sip_route)) == 0;
}

bool Message::popLastRoute() {
  sip_route_t* last = sip_object(msg_)->sip_route;
  if (last == nullptr) return false;
  while (last->r_next != nullptr) last = last->r_next;
  return msg_header_remove(msg_, pub(msg_), reinterpret_cast<msg_header_t*>(last)) == 0;
}

bool Message::setRequestUri(std::string_view uri) {
  sip_t* sip = sip_object(msg_);
  if (sip->sip_request == nullptr) return false;
  su_home_t* home = msg_home(msg_);
  url_t* url = url_make(home, std::string(uri).c_str());
  if (url == nullptr || url->url_type == url_invalid) return false;
  sip_request_t* line =
      sip_request_create(home, sip->sip_request->rq_method, sip->sip_request->rq_method_name,
                         reinterpret_cast<url_string_t*>(url), sip->sip_request->rq_version);
  if (line == nullptr) return false;
  return msg_header_replace(msg_, pub(msg_), reinterpret_cast<msg_header_t*>(sip->sip_request),
                            reinterpret_cast<msg_header_t*>(line)) == 0;
}

bool Message::pushRecordRoute(std::string_view value) {
  sip_record_route_t* rr = sip_record_route_make(msg_home(msg_), std::string(value).c_str());
  if (rr == nullptr) return false;
  return msg_header_insert(msg_, pub(msg_), reinterpret_cast<msg_header_t*>(rr)) == 0;
}

bool Message::addHeader(std::string_view name, std::string_view value) {
  if (name.empty() || name.size() > 64 ||
      name.find_first_of(":\r\n \t") != std::string_view::npos ||
      value.find_first_of("\r\n") != std::string_view::npos) {
    return false;
  }
  // msg_header_add_make places the header before the body (msg_header_add_str would not).
  if (msg_hclass_t* hc = detail::knownHeaderClass(name)) {
    return msg_header_add_make(msg_, pub(msg_), hc, std::string(value).c_str()) == 0;
  }
  std::string line;
  line.reserve(name.size() + value.size() + 2);
  line.append(name).append(": ").append(value);
  return msg_header_add_make(msg_, pub(msg_), sip_unknown_class, line.c_str()) == 0;
}

bool Message::removeHeader(std::string_view name) {
  sip_t* sip = sip_object(msg_);
  if (msg_hclass_t* hc = detail::knownHeaderClass(name)) {
    msg_header_t** slot =
        msg_hclass_offset(sip_default_mclass(), reinterpret_cast<msg_pub_t*>(sip), hc);
    if (slot == nullptr || *slot == nullptr) return false;
    return msg_header_remove_all(msg_, pub(msg_), *slot) == 0;
  }
  bool removed = false;
  sip_unknown_t* u = sip->sip_unknown;
  while (u != nullptr) {
    sip_unknown_t* next = u->un_next;
    if (sameName(u->un_name, name)) {
      msg_header_remove(msg_, pub(msg_), reinterpret_cast<msg_header_t*>(u));
      removed = true;
    }
    u = next;
  }
  return removed;
}

std::size_t Message::removeHeaderValues(std::string_view name,
                                        const std::function<bool(std::string_view)>& matches) {
  const std::vector<std::string> values = headerValues(name);
  const auto removed = static_cast<std::size_t>(std::count_if(
      values.begin(), values.end(), [&](const std::string& value) { return matches(value); }));
  if (removed == 0) return 0;
  removeHeader(name);
  for (const auto& value : values) {
    if (!matches(value)) addHeader(name, value);
  }
  return removed;
}

bool Message::setHeader(std::string_view name, std::string_view value) {
  if (name.empty() || value.find_first_of("\r\n") != std::string_view::npos) return false;
  removeHeader(name);
  return addHeader(name, value);
}

std::string Message::serialize() const {
  if (msg_serialize(msg_, pub(msg_)) < 0 || msg_prepare(msg_) < 0) return {};
  const isize_t count = msg_iovec(msg_, nullptr, 0);
  if (count <= 0) return {};
  std::vector<msg_iovec_t> vec(static_cast<std::size_t>(count));
  msg_iovec(msg_, vec.data(), count);
  std::size_t total = 0;
  for (const auto& v : vec) total += v.mv_len;
  std::string out;
  out.reserve(total);
  for (const auto& v : vec) out.append(static_cast<const char*>(v.mv_base), v.mv_len);
  return out;
}

std::string buildResponse(const Message& request, int status, std::string_view reason,
                          std::string_view toTag, const std::vector<std::string>& extraHeaders) {
  msg_t* msg = request.raw();
  const sip_t* sip = sip_object(msg);
  std::string out;
  out.reserve(512);
  out.append("SIP/2.0 ").append(std::to_string(status)).append(" ").append(reason).append("\r\n");
  for (const sip_via_t* v = sip->sip_via; v != nullptr; v = v->v_next) {
    out.append("Via: ")
        .append(detail::headerValueText(msg, reinterpret_cast<const msg_header_t*>(v)))
        .append("\r\n");
  }
  if (sip->sip_from) {
    out.append("From: ")
        .append(detail::headerValueText(msg, reinterpret_cast<const msg_header_t*>(sip->sip_from)))
        .append("\r\n");
  }
  if (sip->sip_to) {
    out.append("To: ").append(
        detail::headerValueText(msg, reinterpret_cast<const msg_header_t*>(sip->sip_to)));
    if (status > 100 && sip->sip_to->a_tag == nullptr && !toTag.empty())
      out.append(";tag=").append(toTag);
    out.append("\r\n");
  }
  if (sip->sip_call_id) out.append("Call-ID: ").append(view(sip->sip_call_id->i_id)).append("\r\n");
  if (sip->sip_cseq) {
    out.append("CSeq: ")
        .append(std::to_string(sip->sip_cseq->cs_seq))
        .append(" ")
        .append(view(sip->sip_cseq->cs_method_name))
        .append("\r\n");
  }
  for (const auto& line : extraHeaders) out.append(line).append("\r\n");
  out.append("Content-Length: 0\r\n\r\n");
  return out;
}

}  // namespace waypoint::sip
