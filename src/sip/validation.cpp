#include "waypoint/sip/validation.hpp"

#include <cstring>

#include "sofia.hpp"
#include "waypoint/sip/text.hpp"

namespace waypoint::sip {

using detail::view;

namespace {

// RFC 3261 §8.1.1.5: the CSeq sequence number MUST be less than 2^31.
constexpr std::uint32_t kMaxCSeq = 0x7fffffffu;

// The canonical name and typed slot of the header an error line belongs to.
struct ErrorHeader {
  std::string name;  // canonical ("Call-ID"), or empty for a line that names no header
  bool typedHeaderPresent = false;
};

ErrorHeader classify(const sip_t* sip, const msg_header_t* error) {
  ErrorHeader result;
  const char* data = static_cast<const char*>(error->sh_data);
  const std::string_view line(data ? data : "", data ? error->sh_len : 0);
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return result;
  std::string name(line.substr(0, colon));
  while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.pop_back();
  if (name.empty()) return result;
  msg_hclass_t* hc = detail::knownHeaderClass(name);
  if (hc == nullptr) return result;  // not a header we know: a stray line
  result.name = view(hc->hc_name);
  msg_header_t** slot = msg_hclass_offset(
      sip_default_mclass(), reinterpret_cast<msg_pub_t*>(const_cast<sip_t*>(sip)), hc);
  result.typedHeaderPresent = slot != nullptr && *slot != nullptr;
  return result;
}

// The first known header that failed to parse, as "Malformed X" or "Duplicate X" (a
// second instance of a single-instance header lands in the error list beside the first).
std::optional<std::string> headerError(const sip_t* sip) {
  for (const msg_header_t* e = reinterpret_cast<const msg_header_t*>(sip->sip_error); e != nullptr;
       e = e->sh_next) {
    const ErrorHeader header = classify(sip, e);
    if (!header.name.empty())
      return (header.typedHeaderPresent ? "Duplicate " : "Malformed ") + header.name;
  }
  return std::nullopt;
}

// A line that names no header at all (no colon, or an unknown name that failed).
bool hasStrayLine(const sip_t* sip) { return sip->sip_error != nullptr; }

std::optional<std::string> missingMandatory(const sip_t* sip) {
  if (sip->sip_via == nullptr) return "Missing Via";
  if (sip->sip_from == nullptr) return "Missing From";
  if (sip->sip_to == nullptr) return "Missing To";
  if (sip->sip_call_id == nullptr) return "Missing Call-ID";
  if (sip->sip_cseq == nullptr) return "Missing CSeq";
  return std::nullopt;
}

bool validNameAddrUrl(const url_t* url) {
  return url != nullptr && url->url_type != url_invalid && url->url_type != url_unknown &&
         url->url_scheme != nullptr;
}

std::optional<std::string> badAddresses(const sip_t* sip, bool allowWildcardContact) {
  if (!validNameAddrUrl(sip->sip_from->a_url)) return "Malformed From";
  if (!validNameAddrUrl(sip->sip_to->a_url)) return "Malformed To";
  if (sip->sip_cseq->cs_seq > kMaxCSeq) return "Malformed CSeq";
  for (const sip_contact_t* m = sip->sip_contact; m != nullptr; m = m->m_next) {
    if (m->m_url->url_type == url_any) {
      // "Contact: *" only in REGISTER, alone (RFC 3261 §10.2.2).
      if (!allowWildcardContact || m != sip->sip_contact || m->m_next != nullptr)
        return "Malformed Contact";
      continue;
    }
    if (m->m_url->url_type == url_invalid || m->m_url->url_host == nullptr ||
        m->m_url->url_scheme == nullptr) {
      return "Malformed Contact";
    }
  }
  return std::nullopt;
}

// The header's bytes as they arrived ("Name: value\r\n", folding included).
std::string_view rawText(const msg_common_t* common) {
  if (common == nullptr || common->h_data == nullptr) return {};
  return std::string_view(static_cast<const char*>(common->h_data), common->h_len);
}

// RFC 3261 §25.1: Request-Line = Method SP Request-URI SP SIP-Version CRLF, one SP each
// (sofia is lenient about extra or trailing blanks; RFC 4475 §3.1.2.8-10 are not).
std::optional<Rejection> requestLineProblem(std::string_view line) {
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.empty()) return std::nullopt;  // edited by us: nothing left of what came
  const std::size_t first = line.find(' ');
  const std::size_t last = line.rfind(' ');
  if (first == std::string_view::npos || first == last ||
      line.find_first_of(" \t", first + 1) != last || line.find('\t') != std::string_view::npos) {
    return Rejection{400, "Malformed Request-Line"};
  }
  const std::string_view uri = line.substr(first + 1, last - first - 1);
  if (uri.front() == '<') return Rejection{400, "Malformed Request-URI"};  // RFC 4475 §3.1.2.7
  return std::nullopt;
}

// A name-addr or addr-spec value as written (RFC 3261 §20.10): without angle brackets the
// URI may carry no '?' (nor ',' or ';', which end it); within them no blanks
// (RFC 4475 §3.1.2.13-14); an unquoted display name is tokens (§3.1.2.15).
bool badAddressForm(std::string_view raw, const url_t* url) {
  const std::size_t colon = raw.find(':');
  if (colon == std::string_view::npos) return false;
  const std::string_view value = raw.substr(colon + 1);
  const std::size_t open = value.find('<');
  if (open == std::string_view::npos) return url != nullptr && url->url_headers != nullptr;
  const std::size_t close = value.find('>', open);
  if (close == std::string_view::npos || close == open + 1) return false;  // sofia's to judge
  const auto blank = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  if (blank(value[open + 1]) || blank(value[close - 1])) return true;
  const std::string_view display = value.substr(0, open);
  if (display.find('"') != std::string_view::npos) return false;  // quoted: sofia checked it
  for (const char c : display) {
    if (!blank(c) && !isTokenChar(c)) return true;
  }
  return false;
}

std::optional<std::string> badAddressForms(const sip_t* sip) {
  if (sip->sip_from && badAddressForm(rawText(sip->sip_from->a_common), sip->sip_from->a_url))
    return "Malformed From";
  if (sip->sip_to && badAddressForm(rawText(sip->sip_to->a_common), sip->sip_to->a_url))
    return "Malformed To";
  for (const sip_contact_t* m = sip->sip_contact; m != nullptr; m = m->m_next) {
    // A header line with several contacts keeps its bytes on the first one only.
    if (badAddressForm(rawText(m->m_common), m->m_url)) return "Malformed Contact";
  }
  return std::nullopt;
}

}  // namespace

std::optional<Rejection> validateRequest(const Message& request) {
  const sip_t* sip = sip_object(request.raw());
  const sip_request_t* rq = sip->sip_request;
  if (rq == nullptr) return Rejection{400, "Not a request"};
  if (auto problem = requestLineProblem(rawText(rq->rq_common))) return problem;
  if (rq->rq_version == nullptr || std::strcmp(rq->rq_version, "SIP/2.0") != 0) {
    return Rejection{505, "Version Not Supported"};
  }
  const url_t* ruri = rq->rq_url;
  if (ruri == nullptr ||
      (ruri->url_type != url_sip && ruri->url_type != url_sips && ruri->url_type != url_tel)) {
    return Rejection{416, "Unsupported URI Scheme"};
  }
  if (ruri->url_type != url_tel && ruri->url_host == nullptr) {
    return Rejection{400, "Malformed Request-URI"};
  }
  // RFC 3261 §19.1.1 (table 1): headers are not allowed in a Request-URI (RFC 4475 §3.1.2.11).
  if (ruri->url_headers != nullptr) return Rejection{400, "Headers in Request-URI"};
  if (auto error = headerError(sip)) return Rejection{400, *error};
  if (auto missing = missingMandatory(sip)) return Rejection{400, *missing};
  if (hasStrayLine(sip)) return Rejection{400, "Malformed header line"};
  if (auto bad = badAddresses(sip, rq->rq_method == sip_method_register))
    return Rejection{400, *bad};
  if (auto bad = badAddressForms(sip)) return Rejection{400, *bad};
  const std::string_view method = view(rq->rq_method_name);
  if (view(sip->sip_cseq->cs_method_name) != method) return Rejection{400, "CSeq method mismatch"};
  return std::nullopt;
}

std::optional<std::string> validateResponse(const Message& response) {
  const sip_t* sip = sip_object(response.raw());
  const sip_status_t* st = sip->sip_status;
  if (st == nullptr) return "Not a response";
  if (st->st_status < 100 || st->st_status > 699) return "Invalid status code";
  if (st->st_version == nullptr || std::strcmp(st->st_version, "SIP/2.0") != 0) {
    return "Unsupported SIP version";
  }
  if (auto error = headerError(sip)) return error;
  if (auto missing = missingMandatory(sip)) return missing;
  if (hasStrayLine(sip)) return "Malformed header line";
  if (sip->sip_cseq->cs_seq > kMaxCSeq) return "Malformed CSeq";
  return std::nullopt;
}

}  // namespace waypoint::sip
