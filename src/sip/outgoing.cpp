#include "waypoint/sip/outgoing.hpp"

#include <cstring>

#include "sofia.hpp"

namespace waypoint::sip {

using detail::view;

namespace {

msg_pub_t* pub(msg_t* msg) { return reinterpret_cast<msg_pub_t*>(sip_object(msg)); }
msg_header_t* header(void* h) { return static_cast<msg_header_t*>(h); }

// Forgets the encoding of `changed` and of every header written on the same line (a line
// such as "Via: a, b" is one fragment shared by its values; they end at the same byte).
void clearLineOf(msg_header_t* list, msg_header_t* changed) {
  if (changed->sh_data != nullptr) {
    const char* end = static_cast<const char*>(changed->sh_data) + changed->sh_len;
    for (msg_header_t* h = list; h != nullptr; h = h->sh_next) {
      if (h->sh_data != nullptr && static_cast<const char*>(h->sh_data) + h->sh_len == end)
        msg_fragment_clear(h->sh_common);
    }
  }
  msg_fragment_clear(changed->sh_common);
}

// Gives a header we made from our own text that text as its encoding, so serializing
// does not encode it again (a third of a forwarded INVITE's cost otherwise). Only for a
// single header value written the way sofia would write it.
bool presetLine(su_home_t* home, msg_header_t* h, std::string_view head, std::string_view value,
                std::string_view tail) {
  if (h == nullptr || h->sh_next != nullptr) return h != nullptr;
  const std::size_t length = head.size() + value.size() + tail.size();
  char* line = static_cast<char*>(su_alloc(home, static_cast<isize_t>(length + 1)));
  if (line == nullptr) return true;  // sofia encodes it instead
  std::memcpy(line, head.data(), head.size());
  std::memcpy(line + head.size(), value.data(), value.size());
  std::memcpy(line + head.size() + value.size(), tail.data(), tail.size());
  line[length] = '\0';
  h->sh_data = line;
  h->sh_len = static_cast<isize_t>(length);
  return true;
}

// Puts a header we made from our value first of its kind (§16.6: our Via and Record-Route
// on top, a target's Route values before the request's own).
bool prependOurs(msg_t* msg, void* made, std::string_view name, std::string_view value) {
  msg_header_t* h = header(made);
  if (h == nullptr) return false;
  msg_header_t** slot = msg_hclass_offset(sip_default_mclass(), pub(msg), h->sh_class);
  if (slot == nullptr || msg_header_prepend(msg, pub(msg), slot, h) < 0) return false;
  std::string head(name);
  head.append(": ");
  return presetLine(msg_home(msg), h, head, value, "\r\n");
}

// The branch's edits. Prepended headers go right after the request line, so they are
// added bottom up: Route values, Record-Route values, then our Via.
bool applyEdits(Message& message, const BranchEdits& edits) {
  msg_t* msg = message.raw();
  if (!edits.requestUri.empty() && edits.requestUri != message.requestUri()) {
    if (!message.setRequestUri(edits.requestUri)) return false;
    const sip_request_t* line = sip_object(msg)->sip_request;
    std::string head(view(line->rq_method_name));
    head.append(" ");
    std::string tail(" ");
    tail.append(view(line->rq_version)).append("\r\n");
    presetLine(msg_home(msg), header(const_cast<sip_request_t*>(line)), head, edits.requestUri,
               tail);
  }
  su_home_t* home = msg_home(msg);
  for (auto route = edits.routes.rbegin(); route != edits.routes.rend(); ++route) {
    if (!prependOurs(msg, sip_route_make(home, route->c_str()), "Route", *route)) return false;
  }
  for (auto rr = edits.recordRoutes.rbegin(); rr != edits.recordRoutes.rend(); ++rr) {
    if (!prependOurs(msg, sip_record_route_make(home, rr->c_str()), "Record-Route", *rr))
      return false;
  }
  const std::string via(edits.via);
  return prependOurs(msg, sip_via_make(home, via.c_str()), "Via", edits.via);
}

// A request that lives for one hop (§9.1 CANCEL, §17.1.1.3 ACK): a new message with only
// the headers the RFC names, each re-encoded from the parsed original.
std::optional<Message> hopByHop(const Message& original, sip_method_t method, const char* name,
                                const sip_to_t* to, std::uint32_t maxForwards) {
  const sip_t* in = sip_object(original.raw());
  if (in->sip_request == nullptr || in->sip_via == nullptr || in->sip_from == nullptr ||
      to == nullptr || in->sip_call_id == nullptr || in->sip_cseq == nullptr) {
    return std::nullopt;
  }
  std::optional<Message> out = Message::create();
  if (!out) return std::nullopt;
  msg_t* msg = out->raw();
  su_home_t* home = msg_home(msg);
  const auto add = [msg](void* h) {
    return h != nullptr && msg_header_insert(msg, pub(msg), header(h)) == 0;
  };
  const auto dup = [home](const void* h) {
    return msg_header_dup_one(home, static_cast<const msg_header_t*>(h));
  };
  bool added =
      add(sip_request_create(home, method, name,
                             reinterpret_cast<const url_string_t*>(in->sip_request->rq_url),
                             nullptr)) &&
      add(dup(in->sip_via));  // the top Via alone
  for (const sip_route_t* r = in->sip_route; added && r != nullptr; r = r->r_next) {
    added = add(dup(r));
  }
  auto* mf =
      reinterpret_cast<sip_max_forwards_t*>(msg_header_alloc(home, sip_max_forwards_class, 0));
  if (mf != nullptr) mf->mf_count = maxForwards;
  added = added && add(mf) && add(dup(in->sip_from)) && add(dup(to)) && add(dup(in->sip_call_id)) &&
          add(sip_cseq_create(home, in->sip_cseq->cs_seq, method, name)) &&
          add(sip_content_length_create(home, 0)) && add(sip_separator_create(home));
  if (!added) return std::nullopt;
  return out;
}

}  // namespace

std::optional<OutgoingRequest> OutgoingRequest::forBranch(const Message& request,
                                                          const BranchEdits& edits) {
  std::optional<Message> copy = request.copy();
  if (!copy || !applyEdits(*copy, edits)) return std::nullopt;
  return OutgoingRequest(std::move(*copy));
}

std::optional<OutgoingRequest> OutgoingRequest::forwarded(Message&& request,
                                                          const BranchEdits& edits) {
  Message message = std::move(request);
  if (!applyEdits(message, edits)) return std::nullopt;
  return OutgoingRequest(std::move(message));
}

std::optional<OutgoingRequest> OutgoingRequest::cancel(std::uint32_t maxForwards) const {
  std::optional<Message> made = hopByHop(message_, sip_method_cancel, sip_method_name_cancel,
                                         sip_object(message_.raw())->sip_to, maxForwards);
  if (!made) return std::nullopt;
  return OutgoingRequest(std::move(*made));
}

std::optional<OutgoingRequest> OutgoingRequest::ack(const Message& response,
                                                    std::uint32_t maxForwards) const {
  std::optional<Message> made = hopByHop(message_, sip_method_ack, sip_method_name_ack,
                                         sip_object(response.raw())->sip_to, maxForwards);
  if (!made) return std::nullopt;
  return OutgoingRequest(std::move(*made));
}

std::string_view OutgoingRequest::branch() const {
  const sip_via_t* via = sip_object(message_.raw())->sip_via;
  return via ? view(via->v_branch) : std::string_view();
}

std::string_view OutgoingRequest::viaTransport() const {
  const sip_via_t* via = sip_object(message_.raw())->sip_via;
  if (via == nullptr) return {};
  const std::string_view protocol = view(via->v_protocol);
  const std::size_t slash = protocol.rfind('/');
  return slash == std::string_view::npos ? protocol : protocol.substr(slash + 1);
}

bool OutgoingRequest::setViaTransport(std::string_view transport) {
  msg_t* msg = message_.raw();
  sip_t* sip = sip_object(msg);
  sip_via_t* via = sip->sip_via;
  if (via == nullptr || transport.empty()) return false;
  if (viaTransport() == transport) return true;
  const std::string_view protocol = view(via->v_protocol);
  const std::size_t slash = protocol.rfind('/');
  std::string updated(slash == std::string_view::npos ? std::string_view("SIP/2.0/")
                                                      : protocol.substr(0, slash + 1));
  updated.append(transport);
  clearLineOf(header(sip->sip_via), header(via));
  via->v_protocol = su_strdup(msg_home(msg), updated.c_str());
  return via->v_protocol != nullptr;
}

}  // namespace waypoint::sip
