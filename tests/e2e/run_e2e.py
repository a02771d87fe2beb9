#!/usr/bin/env python3
"""End-to-end tests of waypointd: one test per run, chosen with --test (see TESTS).

Exit status: 0 pass, 1 fail, 77 skipped (ctest SKIP_RETURN_CODE).
Set WAYPOINT_E2E_KEEP=1 to keep the daemon's temp directory (config, stderr, metrics).
"""

import argparse
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
import traceback

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from waypoint_e2e import (Daemon, Skip, Sipp, TcpClient, UdpClient, assert_options_ok,  # noqa: E402
                          ipv6_loopback_usable, make_request)

HERE = os.path.dirname(os.path.abspath(__file__))


def options_to_server(port, local, transport="UDP", host="127.0.0.1", **kw):
    """OPTIONS addressed to the server itself (no user part): answered 200."""
    uri = f"sip:[{host}]:{port}" if ":" in host else f"sip:{host}:{port}"
    return make_request("OPTIONS", uri, local, transport, **kw)


# ---------------------------------------------------------------- tests


def test_options_udp(args):
    with Daemon(args.daemon) as d:
        args.sipp.run("options_uac.xml", "127.0.0.1", d.port, "u1")
        # >= : on a loaded machine SIPp may retransmit over UDP, and each copy is answered.
        assert d.metrics()["options_answered"] >= 1


def test_options_tcp(args):
    with Daemon(args.daemon) as d:
        args.sipp.run("options_uac.xml", "127.0.0.1", d.port, "t1")
        m = d.metrics()
        assert m["options_answered"] == 1 and m["tcp_connections_accepted"] == 1, m


def test_malformed_udp(args):
    with Daemon(args.daemon) as d, UdpClient(d.port) as c:
        # The 400's reason phrase must name the problem exactly.
        no_call_id = options_to_server(d.port, c.local, omit=("Call-ID",))
        r = c.transact(no_call_id)
        assert (r.code, r.reason) == (400, "Missing Call-ID"), f"got {r.code} {r.reason}"

        mismatch = options_to_server(d.port, c.local, cseq_method="INVITE")
        r = c.transact(mismatch)
        assert (r.code, r.reason) == (400, "CSeq method mismatch"), f"got {r.code} {r.reason}"
        assert r.header("call-id") == [mismatch.call_id], r.header("call-id")
        assert d.metrics()["requests_malformed"] == 2

        # Without a Via a request cannot be answered: it is dropped. The server handles one
        # socket's datagrams in order, so if it had answered, that answer would come
        # before the 200 to the OPTIONS sent right after.
        c.send(options_to_server(d.port, c.local, omit=("Via",)).data)
        ok = options_to_server(d.port, c.local)
        assert_options_ok(c.transact(ok))
        assert not c.unmatched, f"request without Via was answered: {c.unmatched}"

        m = d.metrics()
        assert m["requests_malformed"] == 2, \
            f"requests_malformed counts requests answered 400; the dropped one without Via must not count: {m}"
        assert m["options_answered"] == 1, m


def test_garbage_then_options(args):
    rng = random.Random(20240601)  # fixed seed: the same bytes on every run
    garbage = [
        bytes(rng.randrange(256) for _ in range(700)),         # random binary
        b"OPTIONS sip:127.0.0.1 SIP/2.0\r\n\x00\x00Via\x00: \x00" + b"\x00" * 200 + b"\r\n\r\n",
        b"INVITE\r\n\r\n",
        b"\r\n\r\n",
        b"",                                                     # an empty datagram
        b"SIP/2.0\r\n\r\n",
    ]
    with Daemon(args.daemon) as d, UdpClient(d.port) as c:
        # Content-Length far past the end of the datagram (and past any integer type).
        garbage.append(options_to_server(d.port, c.local, content_length=99999999999999999999).data)
        for g in garbage:
            c.send(g)
        # Datagrams from one socket are read in order, so this 200 proves the garbage
        # before it was read (and survived).
        assert_options_ok(c.transact(options_to_server(d.port, c.local)))
        m = d.metrics()
        assert m["messages_unparseable"] > 0, m
        assert m["options_answered"] == 1, m
        assert m["udp_datagrams_received"] >= len(garbage), m  # +1 OPTIONS, the empty one may not count

        # The metrics file is also written at clean exit (checked after stop below).
        os.remove(d.metrics_path)
        d.stop()
        assert os.path.exists(d.metrics_path), "no metrics file written at clean exit"


def test_tcp_framing(args):
    with Daemon(args.daemon) as d, TcpClient(d.port) as c:
        # Two requests in one segment: two responses, in order.
        a, b = options_to_server(d.port, c.local, "TCP"), options_to_server(d.port, c.local, "TCP")
        c.send(a.data + b.data)
        for req in (a, b):
            r = c.read_response()
            assert r.matches(req), f"responses out of order or unmatched: {r.header('via')}"
            assert_options_ok(r)

        # One request with a body, split in three: inside the first line, inside the blank
        # line ending the headers, and the rest with the body.
        body = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\n"
        req = options_to_server(d.port, c.local, "TCP", body=body,
                                headers=(("Content-Type", "application/sdp"),))
        cut = req.data.index(b"\r\n\r\n") + 2
        for chunk in (req.data[:10], req.data[10:cut], req.data[cut:]):
            c.send(chunk)
            time.sleep(0.1)
        r = c.read_response()
        assert r.matches(req), f"unmatched response {r}"
        assert_options_ok(r)

        # RFC 5626 §4.4.1: a double-CRLF ping gets a single-CRLF pong...
        c.send(b"\r\n\r\n")
        pong = c.recv_exact(2)
        assert pong == b"\r\n", f"keepalive answered with {pong!r}"
        # ...and the connection still frames messages after it.
        assert_options_ok(c.transact(options_to_server(d.port, c.local, "TCP")))

        m = d.metrics()
        assert m["tcp_messages_received"] == 4, m
        assert m["keepalives_received"] == 1, m
        assert m["options_answered"] == 4, m


def test_tcp_no_content_length(args):
    with Daemon(args.daemon) as d:
        with TcpClient(d.port) as c:
            req = options_to_server(d.port, c.local, "TCP", omit=("Content-Length",))
            c.send(req.data)
            assert c.wait_closed(), "a message without Content-Length on TCP did not close the connection"
            assert b"SIP/2.0 200" not in c.buf, f"answered instead of closing: {c.buf!r}"
        m = d.wait_metric("tcp_connections_closed_framing", lambda v: v >= 1)
        assert m["tcp_connections_closed_framing"] == 1, m
        with TcpClient(d.port) as c:  # still serving
            assert_options_ok(c.transact(options_to_server(d.port, c.local, "TCP")))


def test_tcp_oversize(args):
    with Daemon(args.daemon, limits={"max_message_size": 2048}) as d:
        with TcpClient(d.port) as c:
            probe = options_to_server(d.port, c.local, "TCP", body="x" * 4000).data
            req = options_to_server(d.port, c.local, "TCP", body="x" * (4000 + 5000 - len(probe)))
            assert len(req.data) == 5000
            try:
                c.send(req.data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server may close before it has read everything
            assert c.wait_closed(), "a 5000-byte message with max_message_size 2048 did not close the connection"
            assert b"SIP/2.0 200" not in c.buf, f"oversize message was answered: {c.buf[:200]!r}"
        m = d.wait_metric("tcp_connections_closed_oversize", lambda v: v >= 1)
        assert m["tcp_connections_closed_oversize"] == 1, m
        assert m["options_answered"] == 0, m
        with TcpClient(d.port) as c:  # a message within the limit still works
            assert_options_ok(c.transact(options_to_server(d.port, c.local, "TCP")))


def test_tcp_connection_limit(args):
    with Daemon(args.daemon, limits={"tcp_max_connections_per_source": 2}) as d:
        first, second = TcpClient(d.port), TcpClient(d.port)
        try:
            # Make sure both are accepted and counted before the third one arrives.
            for c in (first, second):
                assert_options_ok(c.transact(options_to_server(d.port, c.local, "TCP")))
            with TcpClient(d.port) as third:
                assert third.wait_closed(), "the 3rd connection from one source was not closed"
                assert not third.buf, f"the rejected connection got data: {third.buf!r}"
            # The two within the limit keep working.
            for c in (first, second):
                assert_options_ok(c.transact(options_to_server(d.port, c.local, "TCP")))
        finally:
            first.close()
            second.close()
        m = d.wait_metric("tcp_connections_rejected", lambda v: v >= 1)
        assert m["tcp_connections_rejected"] >= 1, m
        assert m["options_answered"] == 4, m


def test_tcp_idle_timeout(args):
    with Daemon(args.daemon, limits={"tcp_idle_timeout": "1s"}) as d:
        with TcpClient(d.port) as busy:
            assert_options_ok(busy.transact(options_to_server(d.port, busy.local, "TCP")))
            started = time.monotonic()
            assert busy.wait_closed(timeout=10), "an idle connection was not closed within 10 s (timeout 1s)"
            assert time.monotonic() - started >= 0.5, "closed well before the idle timeout"
        m = d.wait_metric("tcp_connections_closed_idle", lambda v: v >= 1)
        assert m["tcp_connections_closed_idle"] == 1, m


def test_non_options_501(args):
    with Daemon(args.daemon) as d, UdpClient(d.port) as c:
        sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n"
        invite = make_request("INVITE", "sip:bob@localhost", c.local, body=sdp,
                              headers=(("Contact", f"<sip:e2e@127.0.0.1:{c.local[1]}>"),
                                       ("Content-Type", "application/sdp")))
        r = c.transact(invite)
        # The INVITE server transaction sends 100 Trying at once (RFC 3261 17.2.1).
        assert (r.code, r.reason) == (100, "Trying"), f"INVITE got {r.code} {r.reason} first"
        r = c.response_to(invite)
        assert (r.code, r.reason) == (501, "Not Implemented"), f"INVITE got {r.code} {r.reason}"

        # ACK for the non-2xx (same branch, RFC 3261 §17.1.1.3) must get nothing back.
        to_tag = re.search(r";tag=([^;>\s]+)", r.header("to")[0] if r.header("to") else "")
        ack = make_request("ACK", "sip:bob@localhost", c.local, call_id=invite.call_id,
                           branch=invite.branch, to_tag=to_tag.group(1) if to_tag else None)
        c.send(ack.data)
        reply = c.recv(timeout=1.0)  # the one fixed wait: silence cannot be awaited otherwise
        assert reply is None, f"ACK was answered: {reply[:200]!r}"

        # OPTIONS is only ours with no user part and one of our hosts.
        for uri in ("sip:bob@localhost", f"sip:alice@127.0.0.1:{d.port}", "sip:example.com"):
            r = c.transact(make_request("OPTIONS", uri, c.local))
            assert r.code == 501, f"OPTIONS {uri} got {r.code} {r.reason}, expected 501"
        # names/domains: localhost is one of the server's own names.
        assert_options_ok(c.transact(make_request("OPTIONS", "sip:localhost", c.local)))

        m = d.metrics()
        assert m["requests_not_implemented"] == 4, m  # the ACK ends in the transaction
        assert m["transactions_acks_absorbed"] == 1, m
        assert m["options_answered"] == 1, m


def test_responses_dropped(args):
    with Daemon(args.daemon) as d, UdpClient(d.port) as c:
        stray = (f"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:{d.port};branch=z9hG4bKstray\r\n"
                 f"From: <sip:a@localhost>;tag=1\r\nTo: <sip:b@localhost>;tag=2\r\n"
                 f"Call-ID: stray@e2e.invalid\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n")
        c.send(stray.encode())
        # In-order handling: a reply to the stray response would arrive before this 200.
        assert_options_ok(c.transact(options_to_server(d.port, c.local)))
        assert not c.unmatched, f"a response was answered: {c.unmatched}"
        m = d.metrics()
        assert m["responses_dropped"] == 1, m


LISTEN = "listen: [ { transport: udp, address: 127.0.0.1, port: 5060 } ]\n"


def test_check_config(args):
    sample = os.path.join(args.source_dir, "config", "waypoint.yaml")
    p = run([args.daemon, "--check-config", "-c", sample])
    assert p.returncode == 0, f"sample config rejected ({p.returncode}): {p.stderr}"
    assert "configuration OK" in p.stdout, f"stdout: {p.stdout!r}"

    cases = [
        # (text, line the error must name or None, text the message must contain)
        # Each is valid but for one mistake, so the error must be about that mistake.
        (LISTEN + "names: [localhost]\nbogus_key: 1\n", 3, "bogus_key"),
        (LISTEN + "limits:\n  max_mesage_size: 100\n", 3, "max_mesage_size"),
        (LISTEN + "timers: { t1: 500 }\n", 2, None),  # duration without unit
        (LISTEN + "names: [localhost\ndomains: [localhost]\n", None, None),  # bad YAML: unclosed [
        (LISTEN + "names:\n  - a\n - b\n", None, None),  # bad YAML: indentation
    ]
    with tempfile.TemporaryDirectory(prefix="waypoint-e2e-") as tmp:
        for i, (text, line, word) in enumerate(cases):
            path = os.path.join(tmp, f"bad{i}.yaml")
            with open(path, "w") as f:
                f.write(text)
            p = run([args.daemon, "--check-config", "-c", path])
            where = f"config {text!r}"
            assert p.returncode == 1, f"{where}: exit {p.returncode}, stderr {p.stderr!r}"
            pattern = re.escape(path) + (f":{line}:" if line else r":\d+:") + r"\d+:"
            assert re.search(pattern, p.stderr), f"{where}: stderr lacks {pattern}: {p.stderr!r}"
            if word:
                assert word in p.stderr, f"{where}: error does not name {word!r}: {p.stderr!r}"
        missing = os.path.join(tmp, "missing.yaml")
        p = run([args.daemon, "--check-config", "-c", missing])
        assert p.returncode == 1 and missing in p.stderr, f"missing file: {p.returncode} {p.stderr!r}"


def test_cli(args):
    p = run([args.daemon, "--version"])
    assert p.returncode == 0 and p.stdout.strip() == "waypointd 0.1.0", f"--version: {p.returncode} {p.stdout!r}"
    p = run([args.daemon, "--help"])
    assert p.returncode == 0 and re.search("usage", p.stdout, re.I), f"--help: {p.returncode} {p.stdout!r}"
    p = run([args.daemon, "--no-such-option"])
    assert p.returncode != 0, "an unknown option was accepted"


def test_ipv6(args):
    if not ipv6_loopback_usable():
        raise Skip("::1 is not usable on this machine")
    with Daemon(args.daemon, listen=(("udp", "::1"), ("tcp", "::1"))) as d:
        with UdpClient(d.port, host="::1") as c:
            assert_options_ok(c.transact(options_to_server(d.port, c.local, host="::1")))
        args.sipp.run("options_uac.xml", "::1", d.port, "u1")
        assert d.metrics()["options_answered"] >= 2  # >= : SIPp may retransmit over UDP


# ---------------------------------------------------------------- runner


def run(cmd):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL)


def test_options_retransmitted(args):
    """Issue 3: a retransmitted request reaches its server transaction, gets the same final
    response again, and is processed once. Our client, not SIPp: SIPp takes a byte-identical
    200 for a retransmission of the one it already has and re-sends its own request in
    answer, so it cannot check that the copies are identical."""
    with Daemon(args.daemon) as d, UdpClient(d.port) as c:
        request = options_to_server(d.port, c.local)
        answers = [c.transact(request) for _ in range(3)]
        assert all(a.code == 200 for a in answers), answers
        # Byte-identical: the stored response is resent, not a new one (same To tag).
        assert len({a.raw for a in answers}) == 1, [a.raw for a in answers]
        m = d.metrics()
        assert m["options_answered"] == 1, m
        assert m["transactions_server_created"] == 1, m
        assert m["transactions_request_retransmissions_absorbed"] == 2, m


def test_invite_server_transaction(args):
    """Issue 3: an INVITE gets 100 Trying at once, its final response is retransmitted by
    Timer G until the ACK, and the ACK ends there (absorbed, not passed up)."""
    with Daemon(args.daemon, timers={"t1": "100ms", "t2": "400ms"}) as d, UdpClient(d.port) as c:
        invite = make_request("INVITE", "sip:bob@localhost", c.local)
        c.send(invite.data)
        first = c.response_to(invite)
        assert (first.code, first.reason) == (100, "Trying"), first
        assert ";tag=" not in first.header("to")[0], "a 100 carries no To tag (RFC 3261 8.2.6.2)"
        final = c.response_to(invite)
        assert final.code == 501, final
        # No ACK yet: Timer G resends the same 501 (at 100, 300, 700 ms with T1 = 100 ms).
        again = [c.response_to(invite, timeout=3) for _ in range(3)]
        assert all(a.raw == final.raw for a in again), again
        to = final.header("to")[0]
        ack = make_request("ACK", "sip:bob@localhost", c.local, call_id=invite.call_id,
                           branch=invite.branch)
        # The ACK must carry the same From tag and the To tag of the 501.
        ack_data = re.sub(rb"From: [^\r]*", b"From: " + first.header("from")[0].encode(), ack.data)
        ack_data = re.sub(rb"To: [^\r]*", b"To: " + to.encode(), ack_data)
        c.send(ack_data)
        m = d.wait_metric("transactions_acks_absorbed", lambda v: v == 1)
        assert m["transactions_acks_absorbed"] == 1, m
        assert m["requests_not_implemented"] == 1, m
        assert m["acks_unmatched"] == 0, m
        assert m["transactions_response_retransmissions_sent"] >= 3, m


def test_via_received_rport(args):
    """RFC 3581 section 4: a request whose Via asks for rport gets a response whose Via says
    where it really came from (received, and rport with the source port)."""
    with Daemon(args.daemon) as d, UdpClient(d.port) as c:
        r = c.transact(options_to_server(d.port, c.local))
        via = r.header("via")[0]
        assert f"rport={c.local[1]}" in via, via
        assert "received=127.0.0.1" in via, via


def test_register_sipp(args):
    """Issue 4 (registrar): two contacts, refresh, remove, 423, out-of-order CSeq and
    "Contact: *" from SIPp; then the bindings are gone and each step was counted."""
    with Daemon(args.daemon) as d:
        args.sipp.run("register_uac.xml", "127.0.0.1", d.port, "u1")
        m = d.metrics()
        assert m["registrar_bindings"] == 0 and m["registrar_aors"] == 0, m
        assert m["registrar_registers_accepted"] == 4, m
        assert m["registrar_registers_rejected"] == 2, m


def test_register_nat_binding(args):
    """Issue 4 (registrar): a binding keeps the flow it came from; a private Contact
    address is only text. The 200 lists the Contact as registered."""
    with Daemon(args.daemon) as d, UdpClient(d.port) as c:
        request = make_request("REGISTER", "sip:localhost", c.local,
                               headers=(("Contact", "<sip:bob@192.168.1.20:5060>"), ("Expires", "120")))
        request.data = request.data.replace(f"To: <sip:localhost>".encode(), b"To: <sip:bob@localhost>")
        r = c.transact(request)
        assert r.code == 200, r
        assert r.header("contact") == ["<sip:bob@192.168.1.20:5060>;expires=120"], r.header("contact")
        m = d.metrics()
        assert m["registrar_bindings"] == 1 and m["registrar_aors"] == 1, m


TESTS = {name[len("test_"):]: f for name, f in globals().items() if name.startswith("test_")}


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--daemon", required=True, help="path to waypointd")
    parser.add_argument("--source-dir", required=True, help="the waypoint source tree")
    parser.add_argument("--sipp", default="sipp", help="path to sipp")
    parser.add_argument("--test", required=True, choices=sorted(TESTS))
    args = parser.parse_args()
    args.sipp = Sipp(args.sipp, os.path.join(HERE, "scenarios"))
    try:
        TESTS[args.test](args)
    except Skip as e:
        print(f"SKIP e2e.{args.test}: {e}")
        return 77
    except Exception:
        traceback.print_exc()
        print(f"FAIL e2e.{args.test}")
        return 1
    print(f"PASS e2e.{args.test}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
