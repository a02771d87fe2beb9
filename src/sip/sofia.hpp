#pragma once
// sofia-sip includes and small helpers shared by the files of src/sip (private).

#include <sofia-sip/msg.h>
#include <sofia-sip/msg_addr.h>
#include <sofia-sip/msg_buffer.h>
#include <sofia-sip/msg_header.h>
#include <sofia-sip/msg_mclass.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_protos.h>
#include <sofia-sip/sip_util.h>
#include <sofia-sip/url.h>

#include <string>
#include <string_view>

namespace waypoint::sip::detail {

inline std::string_view view(const char* s) { return s ? std::string_view(s) : std::string_view(); }

// A URL as text ("sip:alice@example.com;transport=tcp").
std::string urlText(const url_t* url);

// The header's value as it would be encoded now (without "Name: " and CRLF).
std::string headerValueText(msg_t* msg, const msg_header_t* header);

inline sip_t* sipOf(msg_t* msg) { return sip_object(msg); }

// The header class for a name, full or compact, any case; nullptr for headers sofia does
// not know (they are kept as "unknown" headers).
msg_hclass_t* knownHeaderClass(std::string_view name);

}  // namespace waypoint::sip::detail
