#!/usr/bin/env python3
"""Writes fuzz_core inputs (the record format is described in fuzz_core.cpp).

  core_seed.py --scenarios --out tests/fuzz/corpus/core
      the checked-in seeds: realistic REGISTER/INVITE/CANCEL/ACK/BYE/response sequences
  core_seed.py --datagrams DIR --out OUT
      every message file under DIR (e.g. tests/data/rfc4475) as one datagram record,
      followed by a time step so that its transactions run their timers
"""
import argparse
import pathlib
import struct

# Record builders (op numbers as in fuzz_core.cpp).
ALICE, NAT_PHONE, STRANGER, IPV6_PHONE = 0, 1, 2, 3
STATUSES = [100, 180, 183, 200, 202, 301, 302, 401, 404, 407, 408, 480, 486, 487, 500, 503,
            600, 603]


def datagram(source, text):
    data = text.encode() if isinstance(text, str) else text
    return bytes([0, source]) + struct.pack(">H", len(data)) + data


def chunk(connection, text):
    data = text.encode() if isinstance(text, str) else text
    return bytes([1, connection]) + struct.pack(">H", len(data)) + data


def advance(ms):
    shift = 0
    while ms >> shift > 0xFFFF:
        shift += 1
    return bytes([2, shift]) + struct.pack(">H", ms >> shift)


def answer(status, pick=0):
    return bytes([3, pick, STATUSES.index(status)])


def fail_later(pick=0):
    return bytes([4, pick])


def unreachable(pick=0):
    return bytes([5, pick])


def replay(pick=0):
    return bytes([6, pick])


def fail_next(ahead=0):
    return bytes([7, ahead])


def register(user="bob", contact="sip:bob@192.168.1.20:5060", via="192.168.1.20:5060",
             branch="z9hG4bKreg1", expires=3600, call_id="reg1@phone", cseq=1, transport="UDP"):
    return (f"REGISTER sip:biloxi.example.com SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport} {via};branch={branch};rport\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <sip:{user}@biloxi.example.com>;tag=r{cseq}\r\n"
            f"To: <sip:{user}@biloxi.example.com>\r\n"
            f"Call-ID: {call_id}\r\nCSeq: {cseq} REGISTER\r\n"
            f"Contact: <{contact}>\r\nExpires: {expires}\r\nContent-Length: 0\r\n\r\n")


SDP = "v=0\r\no=alice 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n" \
      "m=audio 49170 RTP/AVP 0\r\n"


def request(method, uri="sip:bob@biloxi.example.com", branch="z9hG4bK776asdhds", cseq=1,
            cseq_method=None, to_tag="", from_host="atlanta.example.com", body="",
            via="192.0.2.10:5060", transport="UDP", extra=""):
    to = "Bob <sip:bob@biloxi.example.com>" + (f";tag={to_tag}" if to_tag else "")
    text = (f"{method} {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/{transport} {via};branch={branch};rport\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: Alice <sip:alice@{from_host}>;tag=1928301774\r\n"
            f"To: {to}\r\n"
            f"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
            f"CSeq: {cseq} {cseq_method or method}\r\n"
            f"Contact: <sip:alice@192.0.2.10:5060>\r\n{extra}")
    if body:
        text += f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    else:
        text += "Content-Length: 0\r\n\r\n"
    return text


def scenarios():
    reg = datagram(NAT_PHONE, register())
    invite = request("INVITE", body=SDP)
    return {
        "register_call_bye": reg + datagram(ALICE, invite) + answer(180) + answer(200)
        + datagram(ALICE, request("ACK", uri="sip:bob@192.168.1.20:5060", to_tag="fuzz3"))
        + advance(2000)
        + datagram(ALICE, request("BYE", uri="sip:bob@192.168.1.20:5060", branch="z9hG4bKbye1",
                                  cseq=2, to_tag="fuzz3"))
        + answer(200) + advance(40000),
        "register_invite_cancel": reg + datagram(ALICE, invite) + answer(180) + advance(1000)
        + datagram(ALICE, request("CANCEL", cseq=1))
        + answer(200) + answer(487, pick=1)
        + datagram(ALICE, request("ACK", cseq=1, to_tag="fuzz7")) + advance(40000),
        "invite_retransmitted_then_busy": reg + datagram(ALICE, invite) + advance(500)
        + datagram(ALICE, invite) + answer(486) + advance(500) + advance(1000)
        + datagram(ALICE, request("ACK", to_tag="fuzz4")) + advance(40000),
        "invite_timer_b_and_c": reg + datagram(ALICE, invite) + advance(33000)
        + datagram(ALICE, request("INVITE", branch="z9hG4bKsecond", cseq=2, body=SDP))
        + answer(180) + advance(190000) + advance(40000),
        "parallel_fork_busy_and_ok": reg
        + datagram(NAT_PHONE, register(contact="sip:bob@192.168.1.21:5060", branch="z9hG4bKreg2",
                                       call_id="reg2@phone"))
        + datagram(ALICE, invite) + answer(486, pick=0) + answer(200, pick=1)
        + advance(64000),
        "gateway_serial_failover_tcp": datagram(ALICE, request("INVITE", uri="sip:00123@gw.example.org",
                                                         body=SDP))
        + answer(503) + fail_later(0) + advance(32000) + advance(32000),
        "gateway_unreachable": datagram(ALICE, request("MESSAGE", uri="sip:x@gw.example.org",
                                                       body="hello"))
        + unreachable(0) + advance(64000),
        "non_invite_timer_e_f": reg + datagram(STRANGER, request("MESSAGE", body="hi",
                                                                 branch="z9hG4bKmsg"))
        + advance(500) + advance(1000) + advance(2000) + advance(4000) + advance(30000),
        "loop_482": datagram(ALICE, request("INVITE", uri="sip:x@loop.example.org")) + replay(0)
        + advance(64000),
        "register_over_tcp_chunks": chunk(0, register(transport="TCP", via="192.0.2.10:49152")[:60])
        + chunk(0, register(transport="TCP", via="192.0.2.10:49152")[60:] + "\r\n\r\n")
        + chunk(1, request("OPTIONS", uri="sip:biloxi.example.com", transport="TCP",
                           via="198.51.100.20:49153"))
        + datagram(ALICE, request("INVITE", body=SDP)) + answer(200) + advance(10000),
        "register_expires_unregister": datagram(NAT_PHONE, register(expires=60)) + advance(61000)
        + datagram(NAT_PHONE, register(cseq=2, branch="z9hG4bKreg3"))
        + datagram(NAT_PHONE, register(contact="*", cseq=3, branch="z9hG4bKreg4", expires=0)),
        "stray_and_rejected": datagram(ALICE, "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 203.0.113.1:5060;"
                                              "branch=z9hG4bKnothing\r\nFrom: <sip:a@b>;tag=1\r\n"
                                              "To: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 INVITE\r\n"
                                              "Content-Length: 0\r\n\r\n")
        + datagram(STRANGER, request("INVITE", uri="sip:bob@biloxi.example.com",
                                     from_host="spam.example"))
        + datagram(IPV6_PHONE, request("OPTIONS", uri="sip:[2001:db8::1]", via="[2001:db8::10]:5060"))
        + datagram(ALICE, "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\r\n") + advance(40000),
        "send_fails_at_once": reg + fail_next(1) + datagram(ALICE, invite) + advance(40000),
    }


def message_files(directory):
    skip = {".md", ".txt", ".json", ".yaml", ".yml", ".py", ".csv", ".stamp"}
    for path in sorted(pathlib.Path(directory).rglob("*")):
        if path.is_file() and path.suffix.lower() not in skip and not path.name.startswith("."):
            yield path


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", action="store_true")
    parser.add_argument("--datagrams", metavar="DIR")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.scenarios:
        for name, data in scenarios().items():
            (out / name).write_bytes(data)
    if args.datagrams:
        for path in message_files(args.datagrams):
            name = str(path.relative_to(args.datagrams)).replace("/", "_")
            (out / name).write_bytes(datagram(ALICE, path.read_bytes()[:0xFFFF]) + advance(40000))


if __name__ == "__main__":
    main()
