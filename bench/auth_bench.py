#!/usr/bin/env python3
"""What digest authentication costs waypointd (issue 10), on loopback against a real
daemon: SIPp registers N users at a fixed rate, once without authentication (the
harness's register.xml: REGISTER, 200) and once with it (bench/sipp/register_auth.xml:
REGISTER, 401, REGISTER with MD5 credentials, 200), each against its own daemon.
Reported per run: registrations completed and failed, the daemon's CPU seconds per 1000
registrations, and the highest of the given rates completed with no failure.

  bench/auth_bench.py --daemon build-release/src/app/waypointd
  bench/auth_bench.py --daemon ... --rates 1000 4000 8000 --seconds 5

Only 127.0.0.1; every SIPp run is bounded in count (-m) and time; only the processes it
starts are stopped, by PID.
"""

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from waypoint_e2e import Daemon, free_port  # noqa: E402

DOMAIN = "bench.test"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PLAIN = os.path.join(os.path.dirname(ROOT), "shared", "bench", "sipp", "register.xml")
DIGEST = os.path.join(ROOT, "bench", "sipp", "register_auth.xml")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def write_users(directory, count):
    """The users file's lines for the daemon and users.csv for SIPp: u0..uN-1, password p<i>."""
    users = []
    csv = os.path.join(directory, "users.csv")
    with open(csv, "w") as c:
        c.write("SEQUENTIAL\n")
        for i in range(count):
            line = f"u{i}:{DOMAIN}:p{i}".encode()
            users.append(f"u{i} {DOMAIN} md5={hashlib.md5(line).hexdigest()} "
                         f"sha-256={hashlib.sha256(line).hexdigest()}")
            c.write(f"u{i};[authentication username=u{i} password=p{i}]\n")
    return users, csv


def run_sipp(sipp, scenario, csv, port, rate, count, timeout):
    local = free_port()
    cmd = [sipp, f"127.0.0.1:{port}", "-sf", scenario, "-inf", csv, "-i", "127.0.0.1",
           "-p", str(local), "-r", str(rate), "-m", str(count), "-l", str(max(rate * 2, 100)),
           "-key", "domain", DOMAIN, "-key", "contact_hostport", f"127.0.0.1:{local}",
           "-key", "expires", "3600", "-nostdin", "-timeout", f"{timeout}s",
           "-timeout_error", "-recv_timeout", "5000", "-max_socket", "1024", "-trace_stat",
           "-stf", os.devnull]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout + 30)
    return p


def one_run(args, with_auth, rate):
    count = rate * args.seconds
    with tempfile.TemporaryDirectory(prefix="waypoint-auth-bench-") as tmp:
        users, csv = write_users(tmp, min(count, args.users))
        # SIPp answers MD5 challenges only, and only the first one.
        auth = {"algorithms": ["MD5"]} if with_auth else None
        daemon = Daemon(args.daemon, listen=(("udp", "127.0.0.1"),), domains=[DOMAIN],
                        names=[DOMAIN, "127.0.0.1"], log_level="info",
                        extra="flood: { rate: 1000000, burst: 2000000 }\n",
                        limits={"udp_receive_buffer": 4194304}, auth=auth,
                        users=users if with_auth else None)
        with daemon:
            before = cpu_seconds(daemon.proc.pid)
            p = run_sipp(args.sipp, DIGEST if with_auth else PLAIN, csv, daemon.port, rate,
                         count, args.seconds * 4 + 10)
            used = cpu_seconds(daemon.proc.pid) - before
            metrics = daemon.metrics()
    successes = int(metrics.get("registrar_registers_accepted_total", 0))
    failed = count - successes
    return {"rate": rate, "count": count, "ok": successes, "failed": failed,
            "cpu_per_1000": 1000 * used / max(successes, 1), "sipp_rc": p.returncode}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--daemon", required=True)
    parser.add_argument("--sipp", default="sipp")
    parser.add_argument("--rates", type=int, nargs="+", default=[1000, 2000, 4000, 8000])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--users", type=int, default=20000)
    args = parser.parse_args()
    for with_auth in (False, True):
        best = 0
        for rate in args.rates:
            r = one_run(args, with_auth, rate)
            label = "digest" if with_auth else "plain "
            print(f"{label} {r['rate']:6}/s: {r['ok']}/{r['count']} registered, {r['failed']} failed, "
                  f"{r['cpu_per_1000']:.3f} CPU s per 1000", flush=True)
            if r["failed"] == 0:
                best = rate
        print(f"{'digest' if with_auth else 'plain'}: highest rate with 0 failures: {best}/s")


if __name__ == "__main__":
    main()
