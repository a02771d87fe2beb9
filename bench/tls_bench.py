#!/usr/bin/env python3
"""What TLS costs waypointd (issue 9), on loopback against a real daemon:

  handshake   N full TLS handshakes (a new connection each, closed after): handshakes per
              second of wall clock and, steadier on a shared machine, per daemon CPU-second
  idle-tcp    memory of C idle connections held at once (plain TCP, the reference),
  idle-tls    ... TLS (handshake done), idle-wss ... WSS (TLS + WebSocket upgrade):
              daemon heap (RssAnon, [heap]) and kernel (slab, sockstat) per connection
  call-tcp    daemon CPU per call (INVITE/100/180/200/ACK/BYE/200) between a caller and a
  call-tls    callee on kept-open connections of that transport, so no handshake in it

Each test starts its own waypointd (the daemon's heap is not reused across tests), with
the self-signed certificate it makes itself (ECDSA P-256). Stdlib only; clients are the
e2e harness's (tests/e2e/waypoint_e2e.py). Only 127.0.0.1; every loop bounded; only the
processes it starts are stopped, by PID.

  bench/tls_bench.py --daemon build-release/src/app/waypointd
  bench/tls_bench.py --daemon ... --tests "idle-tls idle-wss" --connections 10000 --json out.json
  bench/tls_bench.py --daemon ... --tests "call-tcp call-tls" --calls 300 --workers 1 --callgrind
"""

import argparse
import json
import multiprocessing
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
import waypoint_e2e  # noqa: E402
from waypoint_e2e import (Daemon, Dialog, TcpClient, TlsClient, WsClient,  # noqa: E402
                          insecure_client_context, make_invite, make_register, make_response)

LISTEN = (("udp", "127.0.0.1"), ("tcp", "127.0.0.1"), ("tls", "127.0.0.1", 1), ("wss", "127.0.0.1", 2))
PORT_OFFSET = {"tcp": 0, "tls": 1, "wss": 2}
LIMITS = {"tcp_max_connections": 16384, "tcp_max_connections_per_source": 20000,
          "max_handshakes_per_source": 1000, "tcp_idle_timeout": "3600s", "handshake_timeout": "30s"}
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
SETTLE = 2.0  # seconds between the last connection and the memory sample
WAIT_LIMIT = 300.0  # the longest any one phase may take


# ---------------------------------------------------------------- what /proc says


def daemon_cpu(pid):
    """(utime + stime in s from /proc/PID/stat, on-CPU ns over all threads from schedstat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    ns = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/schedstat") as f:
            ns += int(f.read().split()[0])
    return ticks / CLK_TCK, ns / 1e9


def daemon_memory(pid):
    """{VmRSS, RssAnon, heap (the [heap] mapping's Rss)} in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "RssAnon"):
                out[name] = int(value.split()[0]) * 1024
    out["heap"] = 0
    with open(f"/proc/{pid}/smaps") as f:
        in_heap = False
        for line in f:
            if not line[0].isupper():  # a mapping's header line
                in_heap = line.rstrip().endswith("[heap]")
            elif in_heap and line.startswith("Rss:"):
                out["heap"] += int(line.split()[1]) * 1024
    return out


def slab_bytes():
    """{cache: bytes of active objects} from /proc/slabinfo ({} when not readable)."""
    try:
        with open("/proc/slabinfo") as f:
            lines = f.readlines()[2:]
    except OSError:
        return {}
    caches = {}
    for line in lines:
        name, active, _total, size = line.split()[:4]
        caches[name] = int(active) * int(size)
    return caches


def sockstat_tcp():
    """{inuse, mem (bytes; the kernel counts pages)} of TCP from /proc/net/sockstat."""
    with open("/proc/net/sockstat") as f:
        for line in f:
            if line.startswith("TCP:"):
                words = line.split()[1:]
                values = dict(zip(words[::2], map(int, words[1::2])))
                return {"inuse": values["inuse"], "mem": values["mem"] * PAGE}
    return {}


def kernel_sample():
    return {"slab": slab_bytes(), "sockstat": sockstat_tcp()}


# ---------------------------------------------------------------- the daemon


def raise_fd_limit(want=1 << 20):
    """As many descriptors as allowed for us and the daemon we spawn (it inherits them)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for limit in (want, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (limit, max(limit, hard)))
            return limit
        except (ValueError, OSError):
            continue
    return soft


def bench_daemon(binary):
    return Daemon(binary, listen=LISTEN, limits=LIMITS, log_level="info")  # info: the ready line; nothing per message


def wait_until(check, what, limit=WAIT_LIMIT):
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def wait_open_connections(d, count):
    d.wait_metric("connections_open", lambda v: v == count, timeout=WAIT_LIMIT)


# ---------------------------------------------------------------- clients in worker processes


def connect(transport, port):
    """One connection, its handshake done; the harness's client object (holds the socket).
    Without Nagle: a phone's two sends in a row (180 then 200, ACK then BYE) would
    otherwise wait for the daemon's delayed ACK, 40 ms each call."""
    if transport == "tcp":
        client = TcpClient(port)
    elif transport == "tls":
        client = TlsClient(port)
    else:
        client = WsClient(port, secure=True)
        assert client.status == 101, (client.status, client.response_body)
    client.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return client


def handshake_worker(port, count, results):
    """count full TLS handshakes, each on a new connection closed right after it."""
    context = insecure_client_context()
    info = None
    for _ in range(count):
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            info = info or (tls.version(), tls.cipher()[0])
    results.put(info)


def hold_worker(transport, port, count, register, conn):
    """Opens count connections, optionally REGISTERs on each, says how long that took,
    then holds them until told to close."""
    raise_fd_limit()
    started = time.monotonic()
    clients = []
    for i in range(count):
        client = connect(transport, port)
        if register:
            user = f"idle{os.getpid()}x{i}"
            r = client.transact(make_register(user, client.local, client.transport, expires=3600))
            assert r.code == 200, r
        clients.append(client)
    conn.send(time.monotonic() - started)
    conn.recv()  # "close"
    for client in clients:
        client.close()
    conn.send("closed")


def call_once(caller, callee):
    """One call, hung up by the caller: INVITE, 100/180/200, ACK, BYE, 200."""
    invite = make_invite(callee.aor, caller.local, caller.transport)
    caller.send(invite.data)
    got = callee.next_request("INVITE")
    tag = os.urandom(6).hex()
    rr = tuple(("Record-Route", v) for v in got.header("record-route"))
    callee.reply(got, 180, "Ringing", to_tag=tag, headers=rr + (("Contact", callee.contact),))
    callee.reply(got, 200, "OK", to_tag=tag, headers=rr + (("Contact", callee.contact),))
    ok = caller.final_response(invite)
    assert ok.code == 200, ok
    dialog = Dialog(invite, ok)
    caller.send(dialog.request("ACK").data)
    callee.next_request("ACK")
    bye = dialog.request("BYE")
    caller.send(bye.data)
    callee.reply(callee.next_request("BYE"), 200, "OK")
    assert caller.final_response(bye).code == 200


def registered(transport, port, user):
    """A phone on its own connection, registered as sip:user@localhost with a Contact that
    names its connection."""
    client = connect(transport, port)
    params = ";transport=tls" if transport == "tls" else ";transport=tcp"
    client.contact = f"<sip:{user}@{client.local[0]}:{client.local[1]}{params}>"
    client.aor = f"sip:{user}@localhost"
    r = client.transact(make_register(user, client.local, client.transport, contacts=[client.contact],
                                      expires=3600))
    assert r.code == 200, r
    return client


def call_worker(transport, port, index, calls, warmup, conn):
    """A caller and a callee of their own; warmup calls, then calls when told to go."""
    caller = registered(transport, port, f"caller{index}")
    callee = registered(transport, port, f"callee{index}")
    for _ in range(warmup):
        call_once(caller, callee)
    conn.send("ready")
    conn.recv()  # "go"
    started = time.monotonic()
    for _ in range(calls):
        call_once(caller, callee)
    conn.send(time.monotonic() - started)
    caller.close()
    callee.close()


def split(total, parts):
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


def start_workers(target, arg_lists):
    """One process per argument list, each with a pipe; returns [(process, our end)]."""
    workers = []
    for args in arg_lists:
        ours, theirs = multiprocessing.Pipe()
        p = multiprocessing.Process(target=target, args=(*args, theirs), daemon=True)
        p.start()
        workers.append((p, ours))
    return workers


def receive_all(workers, limit=WAIT_LIMIT):
    answers = []
    for p, conn in workers:
        if not conn.poll(limit):
            raise AssertionError(f"worker {p.pid} said nothing for {limit} s")
        answers.append(conn.recv())
    return answers


def join_all(workers):
    for p, _ in workers:
        p.join(timeout=30)
        if p.is_alive():
            p.terminate()
            p.join()


# ---------------------------------------------------------------- tests


def test_handshake(args):
    with bench_daemon(args.daemon) as d:
        port = d.port + PORT_OFFSET["tls"]
        results = multiprocessing.Queue()
        warm = multiprocessing.Process(target=handshake_worker, args=(port, 20, results))
        warm.start()
        warm.join(timeout=60)
        results.get(timeout=10)
        wait_open_connections(d, 0)
        before_cpu, before_m = daemon_cpu(d.proc.pid), d.metrics()
        started = time.monotonic()
        procs = [multiprocessing.Process(target=handshake_worker, args=(port, n, results))
                 for n in split(args.handshakes, args.workers)]
        for p in procs:
            p.start()
        infos = [results.get(timeout=WAIT_LIMIT) for _ in procs]
        wall = time.monotonic() - started
        for p in procs:
            p.join(timeout=30)
        wait_open_connections(d, 0)
        after_cpu, after_m = daemon_cpu(d.proc.pid), d.metrics()
    completed = after_m["tls_handshakes_completed_total"] - before_m["tls_handshakes_completed_total"]
    failed = after_m["tls_handshakes_failed_total"] - before_m["tls_handshakes_failed_total"]
    cpu_ticks, cpu_sched = (a - b for a, b in zip(after_cpu, before_cpu))
    return {"handshakes": args.handshakes, "completed": completed, "failed": failed,
            "protocol": list(infos[0]), "wall_s": wall, "per_wall_s": args.handshakes / wall,
            "daemon_cpu_s": cpu_sched, "daemon_cpu_s_ticks": cpu_ticks,
            "daemon_cpu_us_per_handshake": 1e6 * cpu_sched / args.handshakes,
            "per_daemon_cpu_s": args.handshakes / cpu_sched}


# The caches one socket's kernel state lives in (struct tcp_sock, the socket inode, its
# file and dentry), the ones only one end uses (epoll items: the daemon; bind buckets: the
# client's ephemeral port), and what a SYN and its queued data use.
SOCKET_CACHES = ("TCP", "sock_inode_cache", "filp", "dentry")
DAEMON_ONLY = ("eventpoll_epi", "eventpoll_pwq")
CLIENT_ONLY = ("tcp_bind_bucket", "tcp_bind2_bucket")


def kernel_delta(before, after, count):
    """Per connection: slab bytes by cache (those that moved) and sockstat. Both ends of
    each connection are on this machine, and so are other people's builds (dentry,
    kmalloc), so the daemon's end is estimated from the socket caches alone: half of
    the per-socket ones (one socket on each end) plus the epoll items."""
    caches = {name: (after["slab"].get(name, 0) - before["slab"].get(name, 0)) / count
              for name in after["slab"]}
    moved = {name: round(v) for name, v in sorted(caches.items(), key=lambda kv: -abs(kv[1])) if abs(v) >= 8}
    sockets = sum(caches.get(n, 0) for n in SOCKET_CACHES)
    daemon_only = sum(caches.get(n, 0) for n in DAEMON_ONLY)
    client_only = sum(caches.get(n, 0) for n in CLIENT_ONLY)
    return {"slab_all_caches_both_ends": round(sum(caches.values())),
            "slab_socket_caches_both_ends": round(sockets + daemon_only + client_only),
            "slab_daemon_end_estimate": round(sockets / 2 + daemon_only),
            "slab_by_cache": moved,
            "sockstat_inuse_delta": after["sockstat"]["inuse"] - before["sockstat"]["inuse"],
            "sockstat_mem_bytes_both_ends": round((after["sockstat"]["mem"] - before["sockstat"]["mem"]) / count)}


def per_connection(before, after, count):
    return {name: round((after[name] - before[name]) / count) for name in before}


def test_idle(args, transport):
    count = args.connections
    with bench_daemon(args.daemon) as d:
        port = d.port + PORT_OFFSET[transport]
        warm = start_workers(hold_worker, [(transport, port, 20, args.register)])
        receive_all(warm)
        warm[0][1].send("close")
        receive_all(warm)
        join_all(warm)
        wait_open_connections(d, 0)
        time.sleep(SETTLE)
        mem0, kern0, cpu0 = daemon_memory(d.proc.pid), kernel_sample(), daemon_cpu(d.proc.pid)
        workers = start_workers(hold_worker, [(transport, port, n, args.register)
                                              for n in split(count, args.workers)])
        opened_s = max(receive_all(workers))
        wait_open_connections(d, count)
        time.sleep(SETTLE)
        mem1, kern1, cpu1 = daemon_memory(d.proc.pid), kernel_sample(), daemon_cpu(d.proc.pid)
        for _, conn in workers:
            conn.send("close")
        receive_all(workers)
        join_all(workers)
        wait_open_connections(d, 0)
        time.sleep(SETTLE)
        mem2 = daemon_memory(d.proc.pid)
    result = {"connections": count, "register": args.register, "open_s": opened_s,
              "daemon_cpu_us_per_connection": round(1e6 * (cpu1[1] - cpu0[1]) / count, 1),
              "daemon_bytes_per_connection": per_connection(mem0, mem1, count),
              "daemon_rss_before_after_closed": [mem0["VmRSS"], mem1["VmRSS"], mem2["VmRSS"]],
              "daemon_anon_before_after_closed": [mem0["RssAnon"], mem1["RssAnon"], mem2["RssAnon"]]}
    result.update(kernel_delta(kern0, kern1, count))
    return result


def callgrind_wrapper(binary, directory):
    """A script that runs the daemon under callgrind with instrumentation off until
    callgrind_control turns it on; returns (script, output file pattern)."""
    out = os.path.join(directory, "callgrind.%p.out")
    script = os.path.join(directory, "waypointd-callgrind")
    with open(script, "w") as f:
        f.write(f"#!/bin/sh\nexec valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file={out} "
                f"{os.path.abspath(binary)} \"$@\"\n")
    os.chmod(script, 0o755)
    waypoint_e2e.START_TIMEOUT = 120.0  # valgrind starts slowly
    return script, out


def callgrind_instructions(out_pattern, pid):
    with open(out_pattern.replace("%p", str(pid))) as f:
        for line in f:
            if line.startswith("totals:"):
                return int(line.split()[1])
    raise AssertionError("no totals in the callgrind output")


def set_instrumentation(pid, state):
    subprocess.run(["callgrind_control", "-i", state, str(pid)], check=True, stdout=subprocess.DEVNULL, timeout=60)


def test_calls(args, transport):
    """Daemon CPU per call; with --callgrind, user-space instructions per call instead
    (steady on a busy machine; the kernel's share is not in it)."""
    binary, out = args.daemon, None
    if args.callgrind:
        binary, out = callgrind_wrapper(args.daemon, tempfile.mkdtemp(prefix="waypoint-callgrind-"))
    with bench_daemon(binary) as d:
        port = d.port + PORT_OFFSET[transport]
        workers = start_workers(call_worker, [(transport, port, i, n, args.warmup_calls)
                                              for i, n in enumerate(split(args.calls, args.workers))])
        receive_all(workers)
        if out:
            set_instrumentation(d.proc.pid, "on")
        before = daemon_cpu(d.proc.pid)
        for _, conn in workers:
            conn.send("go")
        wall = max(receive_all(workers, limit=WAIT_LIMIT * (10 if out else 1)))
        after = daemon_cpu(d.proc.pid)
        if out:
            set_instrumentation(d.proc.pid, "off")
        join_all(workers)
        m = d.metrics()
    ticks, sched = (a - b for a, b in zip(after, before))
    result = {"calls": args.calls, "pairs": args.workers, "wall_s": wall, "calls_per_wall_s": args.calls / wall,
              "daemon_cpu_s": sched, "daemon_cpu_s_ticks": ticks,
              "daemon_cpu_s_per_1000_calls": 1e3 * sched / args.calls,
              "tls_handshakes_completed_total": m.get("tls_handshakes_completed_total"),
              "connections_opened_total": m.get("connections_opened_total")}
    if out:
        result["user_instructions_per_call"] = round(callgrind_instructions(out, d.proc.pid) / args.calls)
    return result


TESTS = {
    "handshake": test_handshake,
    "idle-tcp": lambda a: test_idle(a, "tcp"),
    "idle-tls": lambda a: test_idle(a, "tls"),
    "idle-wss": lambda a: test_idle(a, "wss"),
    "call-tcp": lambda a: test_calls(a, "tcp"),
    "call-tls": lambda a: test_calls(a, "tls"),
}


# ---------------------------------------------------------------- report


def summary(results):
    """The headline figures as a Markdown table."""
    rows = []
    h = results.get("handshake")
    if h:
        rows.append(("TLS handshakes/s, wall clock (%d, %s %s)" % (h["handshakes"], *h["protocol"]),
                     f"{h['per_wall_s']:.0f}"))
        rows.append(("TLS handshakes per daemon CPU-second", f"{h['per_daemon_cpu_s']:.0f}"))
        rows.append(("daemon CPU per handshake (us)", f"{h['daemon_cpu_us_per_handshake']:.0f}"))
    for t in ("tcp", "tls", "wss"):
        r = results.get(f"idle-{t}")
        if r:
            b = r["daemon_bytes_per_connection"]
            rows.append((f"idle {t.upper()}: daemon RssAnon / [heap] / VmRSS bytes per connection ({r['connections']})",
                         f"{b['RssAnon']} / {b['heap']} / {b['VmRSS']}"))
            rows.append((f"idle {t.upper()}: kernel slab bytes per connection: all caches, both ends / "
                         "socket caches, both ends / daemon end (est.)",
                         f"{r['slab_all_caches_both_ends']} / {r['slab_socket_caches_both_ends']} / "
                         f"{r['slab_daemon_end_estimate']}"))
            rows.append((f"idle {t.upper()}: sockstat TCP mem bytes per connection, both ends",
                         f"{r['sockstat_mem_bytes_both_ends']}"))
    calls = {t: results[f"call-{t}"] for t in ("tcp", "tls") if f"call-{t}" in results}
    key, what = "daemon_cpu_s_per_1000_calls", "daemon CPU s per 1000 calls"
    if any("user_instructions_per_call" in r for r in calls.values()):
        key, what = "user_instructions_per_call", "daemon user-space instructions per call (callgrind)"
    for t, r in calls.items():
        rows.append((f"{what} over {t.upper()}", f"{r[key]:.3f}" if isinstance(r[key], float) else str(r[key])))
    if len(calls) == 2:
        rows.append(("TLS / TCP per call", f"{calls['tls'][key] / calls['tcp'][key]:.2f}"))
    return "| figure | value |\n|---|---|\n" + "".join(f"| {a} | {b} |\n" for a, b in rows)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--daemon", default=os.path.join(ROOT, "build-release", "src", "app", "waypointd"))
    parser.add_argument("--tests", default=" ".join(TESTS), help="any of: " + " ".join(TESTS))
    parser.add_argument("--handshakes", type=int, default=2000)
    parser.add_argument("--connections", type=int, default=10000)
    parser.add_argument("--register", action="store_true", help="each idle connection sends one REGISTER")
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup-calls", type=int, default=20)
    parser.add_argument("--callgrind", action="store_true",
                        help="call tests: count the daemon's instructions under valgrind instead of CPU time")
    parser.add_argument("--workers", type=int, default=4, help="client processes (call tests: caller/callee pairs)")
    parser.add_argument("--json", help="write every figure there")
    args = parser.parse_args()
    unknown = set(args.tests.split()) - set(TESTS)
    if unknown:
        parser.error(f"unknown tests: {' '.join(sorted(unknown))}")
    limit = raise_fd_limit()
    if limit < args.connections + 1000:
        parser.error(f"RLIMIT_NOFILE is {limit}, too few for {args.connections} connections")
    results = {"daemon": args.daemon, "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    for name in args.tests.split():
        started = time.monotonic()
        results[name] = TESTS[name](args)
        print(f"{name} ({time.monotonic() - started:.0f} s): {json.dumps(results[name])}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    print(summary(results))


if __name__ == "__main__":
    main()
