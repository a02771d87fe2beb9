"""Harness for the end-to-end tests: runs the real waypointd on loopback and talks SIP to it.

Stdlib only. Everything here only touches processes it started itself (by PID) and only
sends traffic to 127.0.0.1 or ::1.
"""

import base64
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time

READY_LINE = "waypointd ready"
SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")
# Generous, because the tests also run against the (slow) ASan+UBSan build.
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0
REPLY_TIMEOUT = 5.0


class Skip(Exception):
    """The machine cannot run this test (e.g. no IPv6 loopback); ctest reports SKIPPED."""


# ---------------------------------------------------------------- ports


def _bindable(family, kind, host, port):
    s = socket.socket(family, kind)
    try:
        s.bind((host, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_port(hosts=("127.0.0.1",), kinds=(socket.SOCK_STREAM, socket.SOCK_DGRAM), span=1):
    """A port free for every kind on every host, as are the span-1 ports after it.

    The kernel picks a candidate (bind to port 0), then the others are tried on it. There
    is a window before the user binds it; Daemon.start retries if it loses that race.
    """
    for _ in range(200):
        host = hosts[0]
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        probe = socket.socket(family, kinds[0])
        try:
            probe.bind((host, 0))
            port = probe.getsockname()[1]
        finally:
            probe.close()
        if port + span > 65536:
            continue
        if all(_bindable(socket.AF_INET6 if ":" in h else socket.AF_INET, k, h, p)
               for p in range(port, port + span) for h in hosts for k in kinds):
            return port
    raise RuntimeError("no free port found")


def _port_bound(family, kind, port):
    """Whether some socket of that family and kind is bound to port, read from
    /proc/net rather than by binding (a probe bind could make the real owner fail)."""
    name = ("tcp" if kind == socket.SOCK_STREAM else "udp") + ("6" if family == socket.AF_INET6 else "")
    try:
        with open(f"/proc/net/{name}") as f:
            next(f)
            return any(int(line.split()[1].rsplit(":", 1)[1], 16) == port for line in f)
    except OSError:
        return True  # no /proc: do not wait


def ipv6_loopback_usable():
    if not socket.has_ipv6:
        return False
    return _bindable(socket.AF_INET6, socket.SOCK_DGRAM, "::1", 0) and \
        _bindable(socket.AF_INET6, socket.SOCK_STREAM, "::1", 0)


def hostport(host, port):
    """host:port; the host alone when port is None (a WebSocket phone's .invalid sent-by)."""
    if port is None:
        return host
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def remove_temp_dir(directory):
    """Removes a test's temp directory, or keeps it (and says so) under WAYPOINT_E2E_KEEP."""
    if os.environ.get("WAYPOINT_E2E_KEEP"):
        print(f"kept {directory}")
    else:
        shutil.rmtree(directory, ignore_errors=True)


# ---------------------------------------------------------------- the daemon


def _yaml_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Daemon:
    """One waypointd process on a free loopback port with its own temp config.

    Use as a context manager: entering starts it and waits for the ready line; leaving
    sends SIGTERM and asserts a clean exit (code 0, no sanitizer report).

    routing: the `routing:` section, as YAML text (the section's body, or the whole
    section starting with "routing:") or as a dict (written as JSON, which YAML reads).
    The text "${port}" anywhere in it becomes the daemon's port, so a rule can name the
    daemon itself as a next hop.

    auth: the `auth:` section, as YAML text (its body) or a dict (written as JSON); None:
    no section (no authentication). users: the lines of the users file, written to
    users.txt beside the config, which the section names as users_file unless it names
    another one.
    """

    def __init__(self, binary, listen=(("udp", "127.0.0.1"), ("tcp", "127.0.0.1")), limits=None, timers=None,
                 domains=("localhost",), names=("localhost",), routing=None, registrar=None, log_level="debug",
                 extra=None, auth=None, users=None, metrics_http=False):
        self.binary = binary
        self.timers = {"t1": "500ms", "t2": "4s", "t4": "5s"}
        self.timers.update(timers or {})
        self.listen = tuple(listen)
        self.limits = {"max_message_size": 65536, "tcp_idle_timeout": "600s",
                       "tcp_max_connections_per_source": 64}
        self.limits.update(limits or {})
        self.domains = tuple(domains)
        self.names = tuple(names)
        self.routing = routing
        self.registrar = dict(registrar or {})
        self.log_level = log_level
        self.extra = extra  # more top-level YAML (trusted:, security:, default_domain: ...)
        self.auth = auth
        self.users = users
        # metrics.listen on a free loopback port (self.metrics_port) instead of off.
        self.metrics_http = metrics_http
        self.metrics_port = None
        # mkdtemp, not TemporaryDirectory, whose finalizer would delete a kept directory.
        self.dir = tempfile.mkdtemp(prefix="waypoint-e2e-")
        self.config_path = os.path.join(self.dir, "waypoint.yaml")
        self.state_dir = os.path.join(self.dir, "state")  # kept across restart()
        self.metrics_path = os.path.join(self.dir, "metrics.prom")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.users_path = os.path.join(self.dir, "users.txt")
        self.proc = None
        self.port = None
        self.env = None  # the daemon's environment (None: ours)
        self.stopped = False
        self._stderr_file = None
        self._run_offset = 0  # where the current process's output starts in stderr.log

    # -- lifecycle

    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.stop()
            else:
                # The test already failed: show what the daemon said, then stop it anyway.
                self._dump_stderr()
                self._terminate_quietly()
        finally:
            self._cleanup()
        return False

    def config_text(self, routing=None):
        """The config file for self.port; routing (if given) instead of self.routing.
        A routing text that starts with "routing:" is written as it is, even if broken."""
        routing = self.routing if routing is None else routing
        lines = ["listen:"]
        for transport, addr, *rest in self.listen:
            port = self.port + (rest[0] if rest else 0)
            # A fourth element: more keys of that listener, e.g. {"advertise": "sip.example"}.
            more = "".join(f", {k}: {_yaml_str(v)}" for k, v in (rest[1] if len(rest) > 1 else {}).items())
            lines.append(f"  - {{ transport: {transport}, address: {_yaml_str(addr)}, port: {port}{more} }}")
        limits = ", ".join(f"{k}: {v}" for k, v in self.limits.items())
        lines += [
            "domains: [" + ", ".join(_yaml_str(d) for d in self.domains) + "]",
            "names: [" + ", ".join(_yaml_str(n) for n in self.names) + "]",
            "timers: { " + ", ".join(f"{k}: {v}" for k, v in self.timers.items()) + " }",
            f"limits: {{ {limits} }}",
            f"log: {{ level: {self.log_level} }}",
            f"metrics: {{ file: {_yaml_str(self.metrics_path)}, listen: {_yaml_str(self._metrics_listen())} }}",
            f"state_dir: {_yaml_str(self.state_dir)}",
        ]
        if self.extra:
            lines.append(self.extra.rstrip("\n"))
        if self.auth is not None:
            lines.append(_auth_yaml(self.auth, self.users is not None))
        if self.registrar:
            lines.append("registrar: { " + ", ".join(f"{k}: {v}" for k, v in self.registrar.items()) + " }")
        if routing is not None:
            lines.append(_routing_yaml(routing).replace("${port}", str(self.port)))
        return "\n".join(lines) + "\n"

    def _metrics_listen(self):
        if not self.metrics_http:
            return ""  # off: the default (127.0.0.1:9260) would collide between daemons
        if self.metrics_port is None:
            self.metrics_port = free_port(kinds=(socket.SOCK_STREAM,))
        return f"127.0.0.1:{self.metrics_port}"

    def write_config(self, text=None):
        """Writes the config (or the given text, verbatim), choosing a port if none yet."""
        if self.port is None:
            hosts = sorted({entry[1] for entry in self.listen})
            # A listen entry (transport, address, offset) binds port + offset.
            span = 1 + max((entry[2] for entry in self.listen if len(entry) > 2), default=0)
            self.port = free_port(hosts=tuple(hosts), span=span)
        if self.users is not None and not os.path.exists(self.users_path):
            self.write_users(self.users)
        _replace_file(self.config_path, self.config_text() if text is None else text)

    def write_users(self, lines):
        """Replaces the users file (lines, or a text written as it is); the daemon reads
        it at start and on SIGHUP."""
        self.users = lines
        _replace_file(self.users_path, lines if isinstance(lines, str) else "".join(l + "\n" for l in lines))

    def start(self):
        # Another process may grab our "free" port before the daemon binds it; then the
        # daemon exits at start-up and we try again with a new port.
        for attempt in range(3):
            self.port = None
            self.write_config()
            if self._spawn():
                return
            if "in use" in self.stderr(since=self._run_offset) and attempt < 2:
                continue
            raise AssertionError(f"waypointd exited with {self.proc.returncode} at start-up:\n{self._tail()}")

    def _spawn(self):
        """Starts the process on the current config; True once ready, False if it exited."""
        if self._stderr_file is None:
            self._stderr_file = open(self.stderr_path, "a")
        self._stderr_file.flush()
        self._run_offset = os.path.getsize(self.stderr_path)
        self.proc = subprocess.Popen([self.binary, "-c", self.config_path], env=self.env,
                                     stdin=subprocess.DEVNULL, stdout=self._stderr_file,
                                     stderr=subprocess.STDOUT)
        self.stopped = False
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if READY_LINE in self.stderr(since=self._run_offset):
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.02)
        self._terminate_quietly()
        raise AssertionError(f"waypointd not ready after {START_TIMEOUT} s:\n{self._tail()}")

    def restart(self, timeout=10.0):
        """SIGTERM (clean exit asserted), then the same config again on the same port and
        the same state_dir (so the binding database too). After kill(), no SIGTERM: it
        only starts the new process.

        Dialogs are not the daemon's state and survive. If the port is briefly not
        bindable again, retries.
        """
        self.stop()
        deadline = time.monotonic() + timeout
        while True:
            if self._spawn():
                return
            in_use = "in use" in self.stderr(since=self._run_offset)
            if not in_use or time.monotonic() > deadline:
                raise AssertionError(f"waypointd did not restart on port {self.port} "
                                     f"(exit {self.proc.returncode}):\n{self._tail()}")
            time.sleep(0.2)

    def kill(self):
        """SIGKILL, as a crash would end it: nothing is flushed. restart() starts it again."""
        assert self.proc.poll() is None, f"waypointd died during the test:\n{self._tail()}"
        self.proc.kill()
        self.proc.wait(timeout=STOP_TIMEOUT)
        self.stopped = True

    def reload(self, routing=None, text=None, timeout=REPLY_TIMEOUT):
        """Rewrites the config file (same port; the new routing, None for no routing
        section, or else the whole text given) and sends SIGHUP. Returns the log lines that mention "reload" written within timeout
        after the signal (waits for the first such line, then briefly for more), so a
        test can check what the daemon said; "" if none came.
        """
        assert self.proc.poll() is None, f"waypointd is not running:\n{self._tail()}"
        if text is not None:
            self.write_config(text)
        else:
            self.routing = routing
            self.write_config()
        mark = self.log_mark()
        self.proc.send_signal(signal.SIGHUP)
        lines = self.wait_log(r"(?i)reload", since=mark, timeout=timeout)
        assert self.proc.poll() is None, f"waypointd died on SIGHUP:\n{self._tail()}"
        return lines

    def stop(self, signalled=False):
        """SIGTERM (unless the test sent it already: signalled), then asserts exit code 0
        and no sanitizer report. Once only."""
        if self.stopped:
            return
        self.stopped = True
        if not signalled:
            assert self.proc.poll() is None, \
                f"waypointd died during the test (exit {self.proc.returncode}):\n{self._tail()}"
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"waypointd ignored SIGTERM for {STOP_TIMEOUT} s:\n{self._tail()}")
        self.check_sanitizers()
        assert code == 0, f"waypointd exited with {code} after SIGTERM:\n{self._tail()}"

    def check_sanitizers(self):
        text = self.stderr()
        for marker in SANITIZER_MARKERS:
            assert marker not in text, f"waypointd stderr contains {marker!r}:\n{self._tail(80)}"

    def _terminate_quietly(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def _cleanup(self):
        if self._stderr_file is not None:
            self._stderr_file.close()
            self._stderr_file = None
        remove_temp_dir(self.dir)

    # -- what it said

    def stderr(self, since=0):
        """The daemon's output (stdout and stderr, all runs), from byte offset since."""
        with open(self.stderr_path, "rb") as f:
            f.seek(since)
            return f.read().decode("utf-8", "replace")

    def log_mark(self):
        """An offset into the log; pass it as since= to look only at what came after."""
        return os.path.getsize(self.stderr_path)

    def log_lines(self, pattern, since=0):
        """Log lines matching the regex pattern."""
        return [line for line in self.stderr(since).splitlines() if re.search(pattern, line)]

    def wait_log(self, pattern, since=0, timeout=REPLY_TIMEOUT):
        """Waits up to timeout for a log line matching pattern; returns the matching lines
        (joined with newlines), or "" if none came."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.log_lines(pattern, since)
            if found:
                time.sleep(0.1)  # the rest of a burst of related lines
                return "\n".join(self.log_lines(pattern, since))
            if time.monotonic() > deadline or self.proc.poll() is not None:
                return ""
            time.sleep(0.02)

    def _tail(self, n=40):
        lines = self.stderr().splitlines()
        return "\n".join("  | " + line for line in lines[-n:])

    def _dump_stderr(self):
        if os.path.exists(self.stderr_path):
            print(f"--- waypointd stderr (last lines) ---\n{self._tail()}")

    # -- metrics

    def _metrics_stamp(self):
        try:
            st = os.stat(self.metrics_path)
            return (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            return None

    def metrics(self, timeout=REPLY_TIMEOUT):
        """SIGUSR1, wait until the metrics file is replaced, return {name: value}."""
        before = self._metrics_stamp()
        self.proc.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout
        while self._metrics_stamp() == before:
            assert time.monotonic() < deadline, f"no new {self.metrics_path} {timeout} s after SIGUSR1"
            assert self.proc.poll() is None, f"waypointd died on SIGUSR1:\n{self._tail()}"
            time.sleep(0.02)
        return read_metrics(self.metrics_path)

    def wait_metric(self, name, predicate, timeout=REPLY_TIMEOUT):
        """Dumps metrics until predicate(value of name) holds; returns the last dump.

        A counter may be bumped a moment after the visible effect (e.g. after the close
        the test saw), so the test polls instead of reading once.
        """
        deadline = time.monotonic() + timeout
        while True:
            values = self.metrics()
            assert name in values, f"metric waypoint_{name} missing; have {sorted(values)}"
            if predicate(values[name]) or time.monotonic() > deadline:
                return values
            time.sleep(0.05)


def _replace_file(path, text):
    # Replace, not rewrite in place: the daemon never reads a half-written file.
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def _auth_yaml(auth, with_users):
    """The auth: section; users_file: users.txt (beside the config) added when the test
    gave users and the section names no file."""
    if isinstance(auth, dict):
        section = dict(auth)
        if with_users:
            section.setdefault("users_file", "users.txt")
        return "auth: " + json.dumps(section)
    body = auth.strip("\n")
    if with_users and "users_file" not in body:
        body = "users_file: users.txt\n" + body
    return "auth:\n" + "\n".join("  " + line for line in body.splitlines())


def _routing_yaml(routing):
    if isinstance(routing, dict):
        return "routing: " + json.dumps(routing)
    text = routing.strip("\n")
    if text.lstrip().startswith("routing:"):
        return text
    return "routing:\n" + "\n".join("  " + line for line in text.splitlines())


def read_metrics(path):
    with open(path) as f:
        return parse_metrics(f.read())


def parse_metrics(text):
    """Prometheus text: {name: value}, the name without "waypoint_", a labelled series
    with its labels as written (requests_received_total{method="INVITE"}), and a labelled
    family (not a histogram's buckets) also under its bare name as the sum of its series
    (requests_received_total: every method)."""
    values = {}
    sums = {}
    for line in text.splitlines():
        m = re.match(r"(?:waypoint_)?([a-z_0-9]+)(\{[^}]*\})?\s+(\S+)\s*$", line)
        if m:
            name, labels, value = m.group(1), m.group(2), float(m.group(3))
            values[name + (labels or "")] = value
            if labels and not labels.startswith("{le="):
                sums[name] = sums.get(name, 0.0) + value
    for name, total in sums.items():
        values.setdefault(name, total)
    return values


# ---------------------------------------------------------------- SIP messages


def token():
    return secrets.token_hex(8)


class Request:
    """A request we send: its bytes, and the values its responses, its ACK (for a non-2xx)
    and a dialog built on its 2xx need."""

    def __init__(self, data, call_id, branch, method=None, uri=None, from_=None, to=None,
                 cseq=1, local=None, transport="UDP"):
        self.data, self.call_id, self.branch = data, call_id, branch
        self.method, self.uri, self.from_, self.to = method, uri, from_, to
        self.cseq, self.local, self.transport = cseq, local, transport


def make_request(method, uri, local, transport="UDP", *, cseq_method=None, omit=(),
                 headers=(), body="", content_length=None, call_id=None, branch=None,
                 to_tag=None, to=None, from_=None, cseq=1, max_forwards=70):
    """A request as bytes; `omit` drops headers by name to make it malformed on purpose.

    to / from_ replace the To / From header values (from_ must carry its tag); by default
    To is the Request-URI and From is a fresh e2e address with a new tag.
    """
    call_id = call_id or token() + "@e2e.invalid"
    branch = branch or "z9hG4bK" + token()
    via_host = hostport(*local)
    to = (to or f"<{uri}>") + (f";tag={to_tag}" if to_tag else "")
    from_ = from_ or f"<sip:e2e@{via_host}>;tag={token()}"
    fields = [
        ("Via", f"SIP/2.0/{transport} {via_host};branch={branch};rport"),
        ("Max-Forwards", str(max_forwards)),
        ("From", from_),
        ("To", to),
        ("Call-ID", call_id),
        ("CSeq", f"{cseq} {cseq_method or method}"),
        *headers,
        ("Content-Length", str(len(body.encode())) if content_length is None else str(content_length)),
    ]
    text = f"{method} {uri} SIP/2.0\r\n"
    text += "".join(f"{n}: {v}\r\n" for n, v in fields if n not in omit)
    text += "\r\n" + body
    return Request(text.encode(), call_id, branch, method=method, uri=uri, from_=from_, to=to,
                   cseq=cseq, local=local, transport=transport)


SDP = ("v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
       "m=audio 9 RTP/AVP 0\r\n")


def make_invite(uri, local, transport="UDP", *, user="alice", **kw):
    """An INVITE with a Contact for our socket and an SDP offer (never used: no media)."""
    contact = f"<sip:{user}@{hostport(*local)}" + (";transport=tcp" if transport == "TCP" else "") + ">"
    headers = (("Contact", contact), ("Content-Type", "application/sdp")) + tuple(kw.pop("headers", ()))
    return make_request("INVITE", uri, local, transport, body=kw.pop("body", SDP), headers=headers, **kw)


def make_register(user, local, transport="UDP", *, domain="localhost", contacts=None, expires=None,
                  call_id=None, cseq=1, headers=(), registrant=None, from_tag=None):
    """REGISTER for sip:user@domain. contacts: Contact values (e.g. "*" or "<sip:..>;q=0.5");
    by default one contact naming our own socket. expires: the Expires header, if any.
    registrant: the user in From, when another one registers user's address (third-party
    registration); from_tag: its tag (default a new one)."""
    if contacts is None:
        contacts = [f"<sip:{user}@{hostport(*local)}" + (";transport=tcp" if transport == "TCP" else "") + ">"]
    aor = f"<sip:{user}@{domain}>"
    fields = tuple(("Contact", c) for c in contacts)
    if expires is not None:
        fields += (("Expires", str(expires)),)
    return make_request("REGISTER", f"sip:{domain}", local, transport, to=aor,
                        from_=f"<sip:{registrant or user}@{domain}>;tag={from_tag or token()}", call_id=call_id,
                        cseq=cseq, headers=fields + tuple(headers))


def make_ack(invite, final):
    """The ACK for a non-2xx final response: hop by hop, same branch (RFC 3261 §17.1.1.3)."""
    return make_request("ACK", invite.uri, invite.local, invite.transport, call_id=invite.call_id,
                        branch=invite.branch, from_=invite.from_, to=final.header("to")[0],
                        cseq=invite.cseq)


def make_response(request, code, reason, *, to_tag=None, headers=(), body=""):
    """A response to a received request (a SipMessage): Vias, From, To, Call-ID, CSeq copied;
    a To tag added unless code is 100 or the request's To already has one."""
    to = request.header("to")[0]
    if code != 100 and ";tag=" not in to:
        to += f";tag={to_tag or token()}"
    fields = [("Via", v) for v in request.header("via")]
    fields += [("From", request.header("from")[0]), ("To", to),
               ("Call-ID", request.header("call-id")[0]), ("CSeq", request.header("cseq")[0]),
               *headers, ("Content-Length", str(len(body.encode())))]
    text = f"SIP/2.0 {code} {reason}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in fields) + "\r\n" + body
    return text.encode()


_COMPACT = {"v": "via", "i": "call-id", "l": "content-length", "f": "from", "t": "to",
            "k": "supported", "c": "content-type", "m": "contact", "o": "event", "s": "subject",
            "e": "content-encoding", "u": "allow-events", "r": "refer-to"}


def split_header_values(value):
    """Splits a header value at the commas that separate entries (not inside <> or quotes)."""
    parts, current, depth, quoted = [], "", 0, False
    for ch in value:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch == "<":
            depth += 1
        elif not quoted and ch == ">":
            depth -= 1
        elif ch == "," and not quoted and depth == 0:
            parts.append(current.strip())
            current = ""
            continue
        current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def parse_uri(text):
    """sip/sips URI (bare or inside <...>) → dict: scheme, user, host, port (int or None),
    params (lower-case names; a flag parameter has the value "")."""
    m = re.search(r"<([^>]*)>", text)
    uri = m.group(1) if m else text.strip()
    m = re.match(r"(sips?):(?:([^@;]*)@)?(\[[^\]]+\]|[^:;?]+)(?::(\d+))?([^?]*)", uri, re.I)
    assert m, f"not a SIP URI: {text!r}"
    params = {}
    for p in m.group(5).split(";")[1:]:
        name, _, value = p.partition("=")
        params[name.strip().lower()] = value.strip()
    return {"scheme": m.group(1).lower(), "user": m.group(2), "host": m.group(3).lower(),
            "port": int(m.group(4)) if m.group(4) else None, "params": params, "uri": uri}


class SipMessage:
    """A parsed request or response: first line, headers in order (compact names expanded)."""

    def __init__(self, data):
        self.raw = data
        # Bare LF line ends are read too: a proxy passes an LF-only sender's lines on as they came.
        end = re.search(rb"\r?\n\r?\n", data)
        head, self.body = (data[:end.start()], data[end.end():]) if end else (data, b"")
        lines = re.split(r"\r?\n", head.decode("utf-8", "replace"))
        self.first_line = lines[0]
        self.code = self.reason = self.method = self.uri = None
        m = re.match(r"SIP/2\.0 (\d{3}) (.*)$", lines[0])
        if m:
            self.code, self.reason = int(m.group(1)), m.group(2)
        else:
            m = re.match(r"([A-Za-z0-9!%*_+`'~.-]+) (\S+) SIP/2\.0$", lines[0])
            assert m, f"not a SIP message: {data[:200]!r}"
            self.method, self.uri = m.group(1), m.group(2)
        self.headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            self.headers.append((_COMPACT.get(name, name), value.strip()))

    @property
    def is_request(self):
        return self.method is not None

    def header(self, name):
        """All values of a header (full or compact name), in order."""
        return [v for n, v in self.headers if n == name.lower()]

    def header_values(self, name):
        """Entries of a list header (Via, Route, Record-Route, Contact), across all its
        header lines, in order."""
        return [part for v in self.header(name) for part in split_header_values(v)]

    def cseq(self):
        number, _, method = self.header("cseq")[0].partition(" ")
        return int(number), method.strip()

    def text(self):
        return self.raw.decode("utf-8", "replace")

    def __repr__(self):
        return f"<{self.first_line}>"


class Response(SipMessage):
    def __init__(self, data):
        super().__init__(data)
        assert self.code is not None, f"not a SIP response: {data[:200]!r}"

    def matches(self, request):
        via = self.header("via")
        return bool(via) and f"branch={request.branch}" in via[0]

    def __repr__(self):
        return f"<{self.code} {self.reason}>"


def parse_message(data):
    """A Response for a status line, else a SipMessage (a request)."""
    return Response(data) if data.startswith(b"SIP/2.0 ") else SipMessage(data)


class Dialog:
    """The caller's side of a dialog set up by a 2xx to our INVITE (RFC 3261 §12.1.2):
    remote target from the 2xx's Contact, route set from its Record-Route reversed."""

    def __init__(self, invite, ok):
        assert 200 <= ok.code < 300, ok
        self.invite = invite
        self.remote_to = ok.header("to")[0]
        self.target = parse_uri(ok.header_values("contact")[0])["uri"]
        self.route = list(reversed(ok.header_values("record-route")))
        self.cseq = invite.cseq

    def request(self, method, **kw):
        inv = self.invite
        if method == "ACK":
            cseq = inv.cseq
        else:
            self.cseq += 1
            cseq = self.cseq
        headers = tuple(("Route", r) for r in self.route) + tuple(kw.pop("headers", ()))
        return make_request(method, self.target, inv.local, inv.transport, call_id=inv.call_id,
                            from_=inv.from_, to=self.remote_to, cseq=cseq, headers=headers, **kw)


def assert_options_ok(response):
    assert response.code == 200, f"expected 200 to OPTIONS, got {response.code} {response.reason}"
    for name in ("allow", "accept", "supported"):
        assert response.header(name), f"200 to OPTIONS lacks {name}:\n{response.raw.decode(errors='replace')}"
    assert "OPTIONS" in ",".join(response.header("allow")), f"Allow does not list OPTIONS: {response.header('allow')}"


# ---------------------------------------------------------------- digest authentication
#
# HTTP Digest as SIP uses it (RFC 3261 §22.4, RFC 7616, RFC 8760), computed here with
# hashlib so the tests check the daemon against an implementation of their own.

DIGEST_HASHES = {"MD5": hashlib.md5, "SHA-256": hashlib.sha256}


def digest_hex(algorithm, text):
    """Lower-case hex of H(text) for "MD5" or "SHA-256" (any case)."""
    return DIGEST_HASHES[algorithm.upper()](text.encode()).hexdigest()


def ha1_hex(algorithm, user, realm, password):
    """HA1 = H(user:realm:password) (RFC 7616 §3.4.2)."""
    return digest_hex(algorithm, f"{user}:{realm}:{password}")


def users_line(user, realm, password, register_for=()):
    """A line of the users file, as `waypointd --hash-password USER REALM` prints it."""
    line = f"{user} {realm} md5={ha1_hex('MD5', user, realm, password)} " \
           f"sha-256={ha1_hex('SHA-256', user, realm, password)}"
    return line + (" register_for=" + ",".join(register_for) if register_for else "")


def parse_auth_params(value):
    """`Digest a="x", b=y` → ("Digest", {"a": "x", "b": "y"}): names lower-case, quotes
    (and backslash escapes) removed, in the order given."""
    scheme, _, rest = value.strip().partition(" ")
    params = {}
    for m in re.finditer(r'\s*([A-Za-z0-9_-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*(?:,|$)', rest):
        raw = m.group(2)
        params[m.group(1).lower()] = re.sub(r"\\(.)", r"\1", raw[1:-1]) if raw.startswith('"') else raw
    return scheme, params


def challenges(response):
    """The Digest challenges of a 401 or 407, in order: dicts of their parameters, with
    "header" (www-authenticate / proxy-authenticate) and "value" (the whole text)."""
    found = []
    for name in ("www-authenticate", "proxy-authenticate"):
        for value in response.header(name):
            scheme, params = parse_auth_params(value)
            assert scheme.lower() == "digest", f"{name}: {value!r} is not a Digest challenge"
            found.append({**params, "header": name, "value": value})
    return found


def challenge_for(response, algorithm):
    """The challenge of that algorithm (an absent algorithm means MD5); fails if none."""
    offered = challenges(response)
    for c in offered:
        if c.get("algorithm", "MD5").upper() == algorithm.upper():
            return c
    raise AssertionError(f"{response} offers no {algorithm} challenge: {[c['value'] for c in offered]}")


def digest_response(algorithm, ha1, nonce, nc, cnonce, qop, method, uri):
    """response = KD(HA1, nonce:nc:cnonce:qop:HA2), HA2 = H(method:uri) (RFC 7616 §3.4.1)."""
    ha2 = digest_hex(algorithm, f"{method}:{uri}")
    return digest_hex(algorithm, f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}")


def credentials(challenge, user, password, method, uri, nc=1, cnonce=None, realm=None):
    """The Authorization / Proxy-Authorization value answering challenge (qop=auth) as
    user with password; nc is a number, written as 8 hex digits. realm: claim another
    realm than the challenge's (the password still hashed with it)."""
    algorithm = challenge.get("algorithm", "MD5")
    realm = challenge["realm"] if realm is None else realm
    cnonce = cnonce or token()
    nc_text = f"{nc:08x}"
    response = digest_response(algorithm, ha1_hex(algorithm, user, realm, password), challenge["nonce"], nc_text,
                               cnonce, "auth", method, uri)
    value = (f'Digest username="{user}", realm="{realm}", nonce="{challenge["nonce"]}", uri="{uri}", '
             f'response="{response}", algorithm={algorithm}, cnonce="{cnonce}", qop=auth, nc={nc_text}')
    if "opaque" in challenge:
        value += f', opaque="{challenge["opaque"]}"'
    return value


def authorization_header(challenge):
    """The header that answers a challenge: Authorization for a 401's, Proxy-Authorization
    for a 407's."""
    return "Authorization" if challenge["header"] == "www-authenticate" else "Proxy-Authorization"


class DigestUser:
    """A user of the users file, with what a phone keeps to answer challenges: the last
    challenge taken (its nonce can be reused with a higher nonce count)."""

    def __init__(self, user, password, realm="localhost", algorithm="SHA-256"):
        self.user, self.password, self.realm, self.algorithm = user, password, realm, algorithm
        self.challenge = None
        self.nc = 0

    def line(self, register_for=()):
        return users_line(self.user, self.realm, self.password, register_for)

    def take(self, response):
        """Keeps response's challenge of our algorithm; the nonce count starts again."""
        self.challenge = challenge_for(response, self.algorithm)
        self.nc = 0

    def answer(self, method, uri, nc=None, password=None):
        """(header name, value) answering the kept challenge; nc: the count to send
        (default: one more than the last)."""
        self.nc = self.nc + 1 if nc is None else nc
        value = credentials(self.challenge, self.user, self.password if password is None else password, method,
                            uri, self.nc)
        return authorization_header(self.challenge), value


def challenged(client, build, who, expect=(401, 407), password=None):
    """The first half of an authenticated request over a UdpClient: build(headers, cseq)
    makes the request (the same Call-ID and From tag each time), sent here without
    credentials; its 401 or 407 (one of expect; ACKed for an INVITE) is kept by who, and
    the request that answers its challenge (the next CSeq) is made but not sent.
    Returns (the challenge response, that request)."""
    first = build((), 1)
    challenge = udp_final(client, first)
    assert challenge.code in expect, f"{first.method} without credentials: expected one of {expect}, got {challenge}"
    who.take(challenge)
    return challenge, build((who.answer(first.method, first.uri, password=password),), 2)


def authenticated(client, build, who, expect=(401, 407), password=None):
    """challenged(), then the authenticated request sent: returns (the challenge
    response, the final response to the authenticated request, that request)."""
    challenge, second = challenged(client, build, who, expect, password)
    return challenge, udp_final(client, second), second


def udp_final(client, request, timeout=REPLY_TIMEOUT):
    """Sends request, returns its final response; a non-2xx to an INVITE is ACKed."""
    client.send(request.data)
    final, _ = client.final_response(request, timeout)
    if request.method == "INVITE" and final.code >= 300:
        client.send(make_ack(request, final).data)
    return final


# ---------------------------------------------------------------- clients


class SocketClient:
    """A client of the daemon on one socket of its own (self.sock), closed on leaving a with."""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class UdpClient(SocketClient):
    """A SIP endpoint on its own loopback UDP socket that talks only to the server (the
    daemon, used as outbound proxy): a caller, or a phone that registers and is called."""

    transport = "UDP"

    def __init__(self, server_port, host="127.0.0.1", port=0):
        """server_port None: a socket whose port a config must name before the daemon
        starts (a next hop); call talk_to(daemon.port) once it runs. port: our own port
        (0: any), for a sender whose responses go to the port its Via names."""
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.host = host
        self.server = None if server_port is None else (host, server_port)
        self.local = (host, self.sock.getsockname()[1])
        self.unmatched = []  # messages read while waiting for something else, oldest first

    def talk_to(self, server_port, server_host=None):
        self.server = (server_host or self.host, server_port)

    def send(self, data):
        self.sock.sendto(data, self.server)

    def recv(self, timeout):
        """One datagram from the server, or None after timeout."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, peer = self.sock.recvfrom(65536)
        except socket.timeout:
            return None
        assert peer[:2] == self.server, f"datagram from unexpected peer {peer}"
        return data

    def recv_message(self, timeout):
        """The next message from the server, parsed, or None after timeout."""
        data = self.recv(timeout)
        return None if data is None else parse_message(data)

    def response_to(self, request, timeout=REPLY_TIMEOUT):
        """Waits for the response matching request's Via branch; others are kept aside."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            message = self.recv_message(left)
            if message is None:
                break
            if isinstance(message, Response) and message.matches(request):
                return message
            self.unmatched.append(message)
        raise AssertionError(f"no response within {timeout} s to:\n{request.data[:300].decode(errors='replace')}")

    def transact(self, request, timeout=REPLY_TIMEOUT):
        self.send(request.data)
        return self.response_to(request, timeout)

    def final_response(self, request, timeout=REPLY_TIMEOUT):
        """Waits for request's final response; returns (final, [provisionals before it])."""
        deadline = time.monotonic() + timeout
        provisionals = []
        while True:
            response = self.response_to(request, max(deadline - time.monotonic(), 0.001))
            if response.code >= 200:
                return response, provisionals
            provisionals.append(response)

    def next_request(self, method=None, timeout=REPLY_TIMEOUT):
        """The next request (of that method, if given) from the server: one set aside
        earlier, else one read now. Others read meanwhile are set aside."""
        for i, message in enumerate(self.unmatched):
            if message.is_request and method in (None, message.method):
                return self.unmatched.pop(i)
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            message = self.recv_message(left)
            if message is None:
                break
            if message.is_request and method in (None, message.method):
                return message
            self.unmatched.append(message)
        raise AssertionError(f"no {method or 'request'} within {timeout} s; set aside: {self.unmatched}")

    def drain(self, timeout):
        """Everything the server sends within timeout (set-aside messages first)."""
        messages, self.unmatched = self.unmatched, []
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            message = self.recv_message(left)
            if message is None:
                break
            messages.append(message)
        return messages

    def reply(self, request, code, reason, **kw):
        """Answers a received request (see make_response)."""
        self.send(make_response(request, code, reason, **kw))


class StreamSocketClient(SocketClient):
    """What the TCP and the WS clients share: a connected socket (self.sock) and the bytes
    read from it and not consumed yet (self.buf)."""

    # What a close by the server raises: the WS tests wait for it, the TCP ones never expect it.
    closed_error = AssertionError

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out on {self.transport}; buffered {self.buf[:200]!r}")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise AssertionError(f"timed out on {self.transport}; buffered {self.buf[:200]!r}") from None
        if not chunk:
            raise self.closed_error(f"server closed the connection; buffered {self.buf[:200]!r}")
        self.buf += chunk

    def next_request(self, method=None, timeout=REPLY_TIMEOUT):
        """The next request (of that method, if given): one set aside earlier, else one read
        now; other messages read meanwhile are set aside."""
        for i, message in enumerate(self.unmatched):
            if message.is_request and method in (None, message.method):
                return self.unmatched.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            message = self.read_message(max(deadline - time.monotonic(), 0.001))
            if message.is_request and method in (None, message.method):
                return message
            self.unmatched.append(message)

    def final_response(self, request, timeout=REPLY_TIMEOUT):
        """The final response to request (provisionals skipped, other messages set aside)."""
        deadline = time.monotonic() + timeout
        while True:
            message = self.read_message(max(deadline - time.monotonic(), 0.001))
            if isinstance(message, Response) and message.matches(request):
                if message.code >= 200:
                    return message
                continue
            self.unmatched.append(message)

    def reply(self, request, code, reason, **kw):
        self.send(make_response(request, code, reason, **kw))


class WsClient(StreamSocketClient):
    """A WebSocket SIP phone (RFC 7118) as a browser is one: it connects to the daemon's
    ws listener, upgrades with Sec-WebSocket-Protocol: sip, and names itself by an .invalid
    host that only its connection leads to. One SIP message per WebSocket message; our
    frames are masked (RFC 6455 §5.3), the server's are not."""

    transport = "WS"
    HOST = "df7jal23ls0d.invalid"
    closed_error = EOFError

    def __init__(self, server_port, host="127.0.0.1", protocols="sip", origin=None, secure=False):
        """secure: WSS, the WebSocket inside TLS (any server certificate is taken)."""
        self.sock = socket.create_connection((host, server_port), timeout=REPLY_TIMEOUT)
        if secure:
            self.transport = "WSS"
            self.sock = insecure_client_context().wrap_socket(self.sock, server_hostname=host)
        self.local = (self.HOST, None)
        self.buf = b""
        self.unmatched = []
        self.status, self.response_headers, self.response_body = self._upgrade(host, server_port, protocols,
                                                                               origin)

    def _upgrade(self, host, port, protocols, origin):
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET / HTTP/1.1", f"Host: {host}:{port}", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        if protocols is not None:
            lines.append(f"Sec-WebSocket-Protocol: {protocols}")
        if origin is not None:
            lines.append(f"Origin: {origin}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        deadline = time.monotonic() + REPLY_TIMEOUT
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        end = self.buf.index(b"\r\n\r\n") + 4
        head, self.buf = self.buf[:end].decode("latin-1"), self.buf[end:]
        status_line, *header_lines = head.strip("\r\n").split("\r\n")
        status = int(status_line.split(" ")[1])
        headers = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        body = b""
        if status != 101:
            length = int(headers.get("content-length", "0"))
            while len(self.buf) < length:
                self._fill(deadline)
            body, self.buf = self.buf[:length], self.buf[length:]
        else:
            expected = base64.b64encode(hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11").encode())
                                        .digest()).decode()
            assert headers.get("sec-websocket-accept") == expected, headers
        return status, headers, body.decode("utf-8", "replace")


    def send_frame(self, opcode, payload, fin=True):
        header = bytes([(0x80 if fin else 0) | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        self.sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def send(self, data):
        """One SIP message as one text message."""
        self.send_frame(0x1, data)

    def _frame(self, deadline):
        while len(self.buf) < 2:
            self._fill(deadline)
        b0, b1 = self.buf[0], self.buf[1]
        assert not b1 & 0x80, "the server masked a frame"
        n, at = b1 & 0x7F, 2
        if n == 126:
            while len(self.buf) < 4:
                self._fill(deadline)
            n, at = struct.unpack("!H", self.buf[2:4])[0], 4
        elif n == 127:
            while len(self.buf) < 10:
                self._fill(deadline)
            n, at = struct.unpack("!Q", self.buf[2:10])[0], 10
        while len(self.buf) < at + n:
            self._fill(deadline)
        payload, self.buf = self.buf[at:at + n], self.buf[at + n:]
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def read_ws_message(self, timeout=REPLY_TIMEOUT):
        """The next data message (pings are answered); ("close", payload) for a close frame."""
        deadline = time.monotonic() + timeout
        parts = []
        for _ in range(10000):
            fin, opcode, payload = self._frame(deadline)
            if opcode == 0x9:
                self.send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            if opcode == 0x8:
                return "close", payload
            parts.append(payload)
            if fin:
                return "data", b"".join(parts)
        raise AssertionError("too many WebSocket frames")

    def read_message(self, timeout=REPLY_TIMEOUT):
        """The next SIP message (one WebSocket message), parsed."""
        kind, payload = self.read_ws_message(timeout)
        assert kind == "data", f"the server closed the WebSocket: {payload!r}"
        return parse_message(payload)

    def read_response(self, timeout=REPLY_TIMEOUT):
        message = self.read_message(timeout)
        assert isinstance(message, Response), f"expected a response on WS, got {message}"
        return message

    def transact(self, request, timeout=REPLY_TIMEOUT):
        """Sends request; returns its final response (provisionals are skipped)."""
        self.send(request.data)
        return self.final_response(request, timeout)

    def wait_closed(self, timeout=REPLY_TIMEOUT):
        """True if the server closes the TCP connection within timeout."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                self._fill(deadline)
        except (EOFError, ConnectionResetError):
            return True
        except AssertionError:
            return False
        return False


class TcpClient(StreamSocketClient):
    transport = "TCP"

    def __init__(self, server_port, host="127.0.0.1"):
        self.sock = socket.create_connection((host, server_port), timeout=REPLY_TIMEOUT)
        self.local = self.sock.getsockname()[:2]
        self.buf = b""
        self.unmatched = []

    def send(self, data):
        self.sock.sendall(data)

    def recv_exact(self, n, timeout=REPLY_TIMEOUT):
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            self._fill(deadline)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, timeout=REPLY_TIMEOUT):
        """The next message on the stream, which must be a response."""
        message = self.read_message(timeout)
        assert isinstance(message, Response), f"expected a response on TCP, got {message}"
        return message

    def read_message(self, timeout=REPLY_TIMEOUT):
        """The next message on the stream, framed by Content-Length (RFC 3261 §18.3)."""
        deadline = time.monotonic() + timeout
        while True:
            self.buf = self.buf.lstrip(b"\r\n")  # keepalive pongs between messages
            if b"\r\n\r\n" in self.buf:
                break
            self._fill(deadline)
        head_end = self.buf.index(b"\r\n\r\n") + 4
        m = re.search(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)", self.buf[:head_end], re.I | re.M)
        assert m, f"message on TCP without Content-Length: {self.buf[:head_end]!r}"
        end = head_end + int(m.group(1))
        while len(self.buf) < end:
            self._fill(deadline)
        data, self.buf = self.buf[:end], self.buf[end:]
        return parse_message(data)

    def transact(self, request, timeout=REPLY_TIMEOUT):
        self.send(request.data)
        response = self.read_response(timeout)
        assert response.matches(request), f"response {response} does not match the request sent"
        return response

    def wait_closed(self, timeout=REPLY_TIMEOUT):
        """True if the server closes (FIN or RST) within timeout. Data read meanwhile is kept in buf."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
            if not chunk:
                return True
            self.buf += chunk
        return False


def insecure_client_context():
    """A TLS client context that takes any server certificate (a self-signed one)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


class TlsClient(TcpClient):
    """A SIP phone over TLS (RFC 3261 §26.2): Content-Length framing inside a TLS stream.
    cafile: verify the server against it (and check the name server_hostname); without
    it, any certificate is taken (the self-signed one, say) and its DER kept in
    self.certificate for the test to check."""

    transport = "TLS"
    closed_error = EOFError

    def __init__(self, server_port, host="127.0.0.1", cafile=None, server_hostname=None, certfile=None,
                 keyfile=None):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if cafile:
            context.load_verify_locations(cafile)
        else:
            context = insecure_client_context()
        if certfile:
            context.load_cert_chain(certfile, keyfile)
        raw = socket.create_connection((host, server_port), timeout=REPLY_TIMEOUT)
        try:
            self.sock = context.wrap_socket(raw, server_hostname=server_hostname or host)
        except BaseException:
            raw.close()
            raise
        self.local = self.sock.getsockname()[:2]
        self.buf = b""
        self.unmatched = []
        self.certificate = self.sock.getpeercert(binary_form=True)

    def fingerprint(self):
        """The server certificate's SHA-256 fingerprint as waypoint logs it ("AB:CD:...")."""
        return ":".join(f"{b:02X}" for b in hashlib.sha256(self.certificate).digest())

    def wait_closed(self, timeout=REPLY_TIMEOUT):
        try:
            return super().wait_closed(timeout)
        except (ssl.SSLError, EOFError):
            return True


class TlsServer(SocketClient):
    """A TLS next hop (a gateway) on loopback with a given certificate: accepts one
    connection at a time in a thread and keeps what it read; handshakes that fail are
    counted. Answers every INVITE with 486 so the caller's transaction ends."""

    def __init__(self, certfile, keyfile):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certfile, keyfile)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.received, self.failed_handshakes, self.server_names = [], 0, []
        self.context.sni_callback = lambda conn, name, ctx: self.server_names.append(name)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        for _ in range(100):  # bounded: a test opens a handful of connections
            try:
                raw, _ = self.sock.accept()
            except OSError:
                return  # closed
            raw.settimeout(REPLY_TIMEOUT)
            try:
                conn = self.context.wrap_socket(raw, server_side=True)
            except OSError:  # ssl.SSLError, or a reset by the client that gave up
                self.failed_handshakes += 1
                raw.close()
                continue
            with conn:
                try:
                    self._read(conn)
                except (OSError, AssertionError):
                    pass  # the proxy closed its connection, or sent nothing more

    def wait_failed_handshakes(self, count):
        """Whether count handshakes have failed within REPLY_TIMEOUT (the server thread
        sees the client's alert a moment after the client gave up)."""
        deadline = time.monotonic() + REPLY_TIMEOUT
        while self.failed_handshakes < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.failed_handshakes == count

    def _read(self, conn):
        client = TcpClient.__new__(TcpClient)
        client.sock, client.buf, client.unmatched, client.transport = conn, b"", [], "TLS"
        while True:
            message = client.read_message()
            self.received.append(message)
            if message.is_request and message.method == "INVITE":
                conn.sendall(make_response(message, 486, "Busy Here", to_tag=token()))


def make_test_ca(directory, name="waypoint test CA"):
    """A CA (key and certificate, PEM) made with the openssl command; returns (crt, key)."""
    crt, key = os.path.join(directory, "ca.crt"), os.path.join(directory, "ca.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", f"/CN={name}",
                    "-addext", "basicConstraints=critical,CA:TRUE",
                    "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
                   check=True, capture_output=True)
    return crt, key


def make_certificate(directory, stem, ca, san, chain=True):
    """A server certificate signed by ca=(crt, key) for the subjectAltName san
    ("IP:127.0.0.1", "DNS:other.example"); returns (certificate file, key file). With
    chain the certificate file holds the CA certificate after the server's (a chain)."""
    crt, key, csr = (os.path.join(directory, stem + ext) for ext in (".crt", ".key", ".csr"))
    subprocess.run(["openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", csr, "-subj", f"/CN={stem}"], check=True, capture_output=True)
    ext = os.path.join(directory, stem + ".ext")
    with open(ext, "w") as f:
        f.write(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\n")
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
                    "-out", crt, "-days", "2", "-extfile", ext], check=True, capture_output=True)
    if chain:
        with open(crt, "a") as out, open(ca[0]) as root:
            out.write(root.read())
    return crt, key
def quit_or_kill(proc, send_quit, kill, timeout=5.0):
    """Asks a process we started to quit (send_quit(), then its stdin closed); if it has not
    gone within timeout, kill() ends it (by its PID or group id)."""
    try:
        send_quit()
        proc.stdin.close()
    except (BrokenPipeError, ValueError):
        pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill()
        proc.wait()


# ---------------------------------------------------------------- a browser phone


class BrowserPhone:
    """A web phone: JsSIP in headless Chromium (tests/browser/phone.mjs under node), told
    what to do over its stdin and reporting JsSIP's events on its stdout, a JSON object a
    line. Raises Skip only when node or Chromium cannot start; anything else that goes
    wrong (no node_modules, a JsSIP error) fails the test.

    node runs in a session of its own and puppeteer starts Chromium in another, so close()
    can end each by its process group id (the PIDs this harness learnt) if it does not quit.
    """

    STEP_TIMEOUT = 15.0
    FAILURES = ("error", "failed", "registration_failed", "exit")

    def __init__(self, node, script, chromium, modules):
        self.dir = tempfile.mkdtemp(prefix="waypoint-browser-")
        self.log_path = os.path.join(self.dir, "phone.log")
        self.events = []  # every event so far, oldest first
        self.cursor = 0  # expect() looks at events from here on
        self.changed = threading.Condition()
        self.browser_pid = None
        self.proc = None
        cmd = [node, script, "--build-dir", self.dir, "--chromium", chromium, "--modules", modules]
        try:
            with open(self.log_path, "w") as log:
                self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                             text=True, start_new_session=True)
        except OSError as e:
            remove_temp_dir(self.dir)
            raise Skip(f"node cannot start ({node}): {e}") from None
        self.reader = threading.Thread(target=self._read_events, daemon=True)
        self.reader.start()
        try:
            # Chromium's start (up to two steps, phone.mjs LAUNCH_TIMEOUT_MS) and the page's load.
            ready = self.expect("ready", timeout=3 * self.STEP_TIMEOUT, failures=("launch_failed", "error", "exit"))
        except AssertionError:
            launch = [e for e in self.events if e["event"] == "launch_failed"]
            self.close()
            if launch:
                raise Skip(f"Chromium cannot start ({chromium}): {launch[0]['message']}") from None
            raise
        self.browser_pid = ready["browser_pid"]
        print(f"browser phone: {ready['version']}, pid {self.browser_pid}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _read_events(self):
        for line in self.proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                event = {"event": "error", "message": f"not JSON: {line!r}"}
            with self.changed:
                self.events.append(event)
                self.changed.notify_all()
        with self.changed:
            self.events.append({"event": "exit"})
            self.changed.notify_all()

    def command(self, cmd, **fields):
        self.proc.stdin.write(json.dumps({"cmd": cmd, **fields}) + "\n")
        self.proc.stdin.flush()

    def expect(self, name, timeout=STEP_TIMEOUT, failures=FAILURES):
        """The next event called name (those before it are passed over); an event in
        failures, or none within timeout, fails with everything the phone said."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                for i in range(self.cursor, len(self.events)):
                    event = self.events[i]
                    if event["event"] == name:
                        self.cursor = i + 1
                        return event
                    if event["event"] in failures:
                        self.cursor = i + 1
                        raise AssertionError(f"browser phone: {event} while waiting for {name}\n{self.report()}")
                self.cursor = len(self.events)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"browser phone: no {name} within {timeout} s\n{self.report()}")
                self.changed.wait(left)

    def report(self):
        with open(self.log_path, errors="replace") as f:
            log = f.read()[-8000:]
        events = "\n".join(f"  {e}" for e in self.events)
        return f"--- browser phone events ---\n{events}\n--- browser phone log ---\n{log}"

    def close(self):
        """Asks the phone to quit; kills node and Chromium by their group ids if they
        have not gone within a few seconds."""
        if self.proc is None:
            return
        quit_or_kill(self.proc, lambda: self.command("quit"), lambda: os.killpg(self.proc.pid, signal.SIGKILL))
        self.reader.join(timeout=5)
        self.proc.stdout.close()
        self._kill_browser()
        self.proc = None
        remove_temp_dir(self.dir)

    def _kill_browser(self):
        # Only while the PID is still our Chromium: after it exited, it may be anybody's.
        if self.browser_pid is None:
            return
        try:
            with open(f"/proc/{self.browser_pid}/cmdline", "rb") as f:
                if b"chromium" not in f.read():
                    return
            os.killpg(self.browser_pid, signal.SIGKILL)
        except (FileNotFoundError, ProcessLookupError):
            pass


# ---------------------------------------------------------------- a softphone (baresip)


class Baresip:
    """One baresip softphone (Debian's baresip-core) registering through waypoint as its
    outbound proxy over TLS, trusting cafile. No sound device: a 440 Hz sine (ausine)
    is its microphone and it has no player. Told what to do with menu commands on its
    stdin ("/dial ...", "/hangup"); what it reports on stdout, with its SIP trace (-s),
    goes to a log that expect() and trace() read. Raises Skip only when there is no
    baresip binary; anything else that goes wrong fails the test.

    answermode=auto: an incoming call is answered at once.
    """

    STEP_TIMEOUT = 15.0
    MODULES = "/usr/lib/baresip/modules"
    # Lines of the log (each a regular expression) that end a wait with a failure.
    FAILURES = (r"registration failed|\{0/TLS/v4\} [3-6]\d\d ", r"baresip init failed", r"call: .*failed")
    # One SIP trace entry: the colour escape, "#", "TLS src -> dst", the message.
    _TRACE = re.compile(r"\x1b\[36;1m#\n(UDP|TCP|TLS) (\S+) -> (\S+)\n(.*?)\x1b\[;m", re.S)

    @staticmethod
    def require(binary):
        """Skip unless binary is a baresip that can be run."""
        if shutil.which(binary) is None:
            raise Skip(f"no baresip ({binary}; Debian package baresip-core)")

    def __init__(self, binary, user, proxy_port, cafile, domain="localhost", password=None):
        """password: the account's auth_pass, for a server that challenges it."""
        self.require(binary)
        self.user = user
        self.dir = tempfile.mkdtemp(prefix=f"waypoint-baresip-{user}-")
        self.log_path = os.path.join(self.dir, "baresip.log")
        self.cursor = 0  # expect() reads the log from here on
        self.proc = None
        self._write_config(cafile)
        with open(os.path.join(self.dir, "accounts"), "w") as f:
            f.write(f'<sip:{user}@{domain};transport=tls>;outbound="sip:127.0.0.1:{proxy_port};transport=tls"'
                    ";regint=300;answermode=auto" + (f";auth_pass={password}" if password else "") + "\n")
        # stdbuf: baresip's stdout into a file is block-buffered, and a line could wait there.
        with open(self.log_path, "w") as log:
            self.proc = subprocess.Popen(["stdbuf", "-oL", binary, "-s", "-f", self.dir], stdin=subprocess.PIPE,
                                         stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            self.expect(r"baresip is ready")
        except AssertionError:
            self.close()
            raise

    def _write_config(self, cafile):
        # Port 0: baresip 1.0 given a free port here mostly failed to start ("tcp: sock_bind:
        # Address already in use"), and waypoint reaches it over its own connection anyway.
        # net_interface 127.0.0.1: the SDP offers loopback, so RTP stays on loopback too.
        with open(os.path.join(self.dir, "config"), "w") as f:
            f.write(f"""poll_method epoll
sip_listen 127.0.0.1:0
sip_cafile {cafile}
net_interface 127.0.0.1
audio_source ausine,440
ausrc_srate 48000
ausrc_channels 2
call_local_timeout 30
module_path {self.MODULES}
module stdio.so
module g711.so
module ausine.so
module_tmp account.so
module_app menu.so
""")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def command(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def _poll(self, find, what, timeout):
        """find() until it returns something (or raises); fails after timeout or when
        baresip has exited."""
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.05) + 1):
            found = find()
            if found is not None:
                return found
            if self.proc.poll() is not None:
                raise AssertionError(f"baresip {self.user} exited ({self.proc.returncode}) while waiting for "
                                     f"{what}\n{self.report()}")
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        raise AssertionError(f"baresip {self.user}: no {what} within {timeout} s\n{self.report()}")

    def expect(self, pattern, timeout=STEP_TIMEOUT, failures=FAILURES):
        """The regex match of pattern in what baresip printed since the last expect();
        a line matching failures first, baresip's exit, or nothing within timeout fails."""
        def find():
            text = self.log()[self.cursor:]
            found = re.search(pattern, text)
            failed = [m for m in (re.search(p, text) for p in failures) if m]
            first_failure = min(failed, key=lambda m: m.start()) if failed else None
            if first_failure and (found is None or first_failure.start() < found.start()):
                raise AssertionError(f"baresip {self.user}: {first_failure.group(0)!r} while waiting for "
                                     f"{pattern!r}\n{self.report()}")
            if found:
                self.cursor += found.end()
            return found
        return self._poll(find, repr(pattern), timeout)

    def trace(self):
        """Its SIP trace: (transport, source, destination, message) for every message it
        sent or received, oldest first."""
        return [(m.group(1), m.group(2), m.group(3), parse_message(m.group(4).encode()))
                for m in self._TRACE.finditer(self.log())]

    def requests(self, method):
        """The method requests in its SIP trace, those it sent and those it received."""
        return [msg for _, _, _, msg in self.trace() if msg.method == method]

    def wait_response(self, code, method, timeout=STEP_TIMEOUT):
        """The first response code to a method in its SIP trace, waiting for it if need be."""
        def find():
            return next((msg for _, _, _, msg in self.trace() if msg.code == code and msg.cseq()[1] == method), None)
        return self._poll(find, f"{code} to {method}", timeout)

    def report(self):
        return f"--- baresip {self.user} log ---\n{self.log()[-8000:]}"

    def close(self):
        """Asks baresip to quit (it unregisters); kills it by its PID if it has not gone
        within a few seconds."""
        if self.proc is None:
            return
        quit_or_kill(self.proc, lambda: self.command("/quit"), self.proc.kill)
        self.proc = None
        remove_temp_dir(self.dir)


# ---------------------------------------------------------------- SIPp


_TRACE_ENTRY = re.compile(
    r"^-{20,} (\S+ \S+)\n(UDP|TCP|TLS|SCTP) message (sent|received) (?:\((\d+) bytes\)|\[(\d+)\] bytes ?):\n\n",
    re.M)


class TracedMessage(SipMessage):
    """A message from a SIPp -trace_msg file: what it was, which way, over what."""

    def __init__(self, data, direction, transport, stamp):
        super().__init__(data)
        self.direction, self.transport, self.stamp = direction, transport, stamp


def parse_sipp_trace(text):
    """The messages in a SIPp -trace_msg file, in order."""
    entries = list(_TRACE_ENTRY.finditer(text))
    messages = []
    for i, m in enumerate(entries):
        end = entries[i + 1].start() if i + 1 < len(entries) else len(text)
        data = text[m.end():end].encode("utf-8", "surrogateescape")
        size = int(m.group(4) or m.group(5))
        data = data[:size] if len(data) >= size else data.rstrip(b"\n")
        for chunk in _split_stream(data):
            messages.append(TracedMessage(chunk, m.group(3), m.group(2), m.group(1)))
    return messages


def _split_stream(data):
    """A TCP read may hold several messages: cut them apart by Content-Length."""
    chunks = []
    while data.strip(b"\r\n"):
        data = data.lstrip(b"\r\n")
        head_end = data.find(b"\r\n\r\n")
        if head_end < 0:
            chunks.append(data)
            break
        head_end += 4
        m = re.search(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)", data[:head_end], re.I | re.M)
        end = head_end + (int(m.group(1)) if m else 0)
        chunks.append(data[:end])
        data = data[end:]
    return chunks


class SippProcess:
    """One SIPp run started by Sipp.start: wait() for it, then read what it sent and got."""

    def __init__(self, cmd, proc, work, port):
        self.cmd, self.proc, self.work, self.port = cmd, proc, work, port
        self.returncode = None
        self.stdout = self.stderr = ""
        self.reported = False  # its logs are already in a failure message

    def _path(self, name):
        return os.path.join(self.work, name)

    def _read(self, name):
        path = self._path(name)
        if not os.path.exists(path):
            return ""
        with open(path, errors="surrogateescape", newline="") as f:
            return f.read()

    def running(self):
        return self.proc.poll() is None

    def wait(self, timeout=40, check=True):
        """Waits for the exit; with check, asserts exit 0 (every call succeeded)."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.reported = True
            raise AssertionError(f"sipp still running after {timeout} s: {' '.join(self.cmd)}\n{self.logs()}")
        self.returncode = self.proc.returncode
        self.stdout, self.stderr = out.decode(errors="replace"), err.decode(errors="replace")
        if check and self.returncode != 0:
            self.reported = True
            raise AssertionError(f"sipp exited with {self.returncode}: {' '.join(self.cmd)}\n"
                                 f"--- sipp stderr ---\n{self.stderr[-3000:]}\n{self.logs()}")
        return self

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()

    def logs(self, limit=4000):
        text = ""
        for name in ("messages.log", "errors.log"):
            body = self._read(name)
            if body:
                text += f"--- sipp {name} ({self.cmd[self.cmd.index('-sf') + 1]}) ---\n{body[-limit:]}\n"
        return text

    def messages(self, direction=None):
        """Every message SIPp sent or received (direction "sent" / "received"), in order."""
        found = parse_sipp_trace(self._read("messages.log"))
        return [m for m in found if direction in (None, m.direction)]

    def received(self, method=None, code=None):
        """Received requests of that method, or responses with that code (both None: all)."""
        return [m for m in self.messages("received")
                if (method is None or m.method == method) and (code is None or m.code == code)]

    def sent(self, method=None, code=None):
        return [m for m in self.messages("sent")
                if (method is None or m.method == method) and (code is None or m.code == code)]


class Sipp:
    """Runs SIPp scenarios; every port it opens is chosen free, on loopback. Keeps track of
    the processes it started, so cleanup() can end any that a failed test left behind."""

    def __init__(self, binary, scenario_dir):
        self.binary = binary
        self.scenario_dir = os.path.abspath(scenario_dir)  # SIPp runs in a temp cwd
        self.started = []

    def run(self, scenario, server_host, server_port, transport="u1", timeout=40, **kw):
        """Runs one scenario to its end and asserts it succeeded; returns its SippProcess."""
        kw.setdefault("call_timeout", 10)
        return self.start(scenario, server_host, server_port, transport, **kw).wait(timeout)

    def start(self, scenario, server_host=None, server_port=None, transport="u1", *, call_id=None,
              service=None, keys=None, server=False, local="127.0.0.1", port=None, call_timeout=20,
              recv_timeout=5, extra=()):
        """Starts one call of a scenario in the background and returns its SippProcess.

        server: SIPp waits for the first request on its own port (a scenario that starts
        with <recv>); the process's port is then the one to send to. Otherwise it sends
        to server_host:server_port.
        call_id: the Call-ID of the call (-cid_str). A scenario that registers and then
        takes a call gets the INVITE only if it carries this Call-ID, because SIPp maps
        incoming messages to calls by Call-ID: give caller and callee the same one.
        service: [service], the user part the UAC scenarios call.
        keys: {name: value} for the scenario's [name] keywords (-key).
        port: SIPp's own port (default: a free one), e.g. one a phone registered from.
        """
        if server_host is not None:
            local = "::1" if ":" in server_host else "127.0.0.1"
        family = socket.AF_INET6 if ":" in local else socket.AF_INET
        kind = socket.SOCK_STREAM if transport.startswith("t") else socket.SOCK_DGRAM
        for attempt in range(3):
            work = tempfile.mkdtemp(prefix="waypoint-sipp-")
            sip_port = port or free_port(hosts=(local,))
            # SIPp's control socket (default 8888) and RTP echo ports (mp, mp+2) must
            # not collide with anything else on the machine.
            control_port = free_port(hosts=("127.0.0.1",), kinds=(socket.SOCK_DGRAM,))
            media_port = free_port(hosts=(local,), kinds=(socket.SOCK_DGRAM,), span=4)
            cmd = [self.binary]
            if not server:
                cmd.append(hostport(server_host, server_port))
            cmd += ["-sf", os.path.join(self.scenario_dir, scenario),
                    "-t", transport, "-i", local, "-p", str(sip_port),
                    "-ci", "127.0.0.1", "-cp", str(control_port),
                    "-mi", local, "-mp", str(media_port),
                    "-m", "1", "-timeout", f"{call_timeout}s", "-timeout_error",
                    "-recv_timeout", f"{recv_timeout}s",
                    "-nostdin", "-trace_msg", "-trace_err",
                    "-message_file", os.path.join(work, "messages.log"),
                    "-error_file", os.path.join(work, "errors.log")]
            if call_id:
                cmd += ["-cid_str", call_id]
            if service:
                cmd += ["-s", service]
            for name, value in (keys or {}).items():
                cmd += ["-key", name, str(value)]
            cmd += list(extra)
            proc = subprocess.Popen(cmd, cwd=work, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            run = SippProcess(cmd, proc, work, sip_port)
            self.started.append(run)
            # Wait until it holds its port (or has exited): a caller may send to it next.
            deadline = time.monotonic() + 5
            while proc.poll() is None and time.monotonic() < deadline:
                if _port_bound(family, kind, sip_port):
                    break
                time.sleep(0.01)
            # 254 (-2): SIPp could not bind a socket, i.e. we lost a port race; retry.
            if proc.poll() == 254 and attempt < 2 and port is None:
                run.wait(check=False)
                continue
            return run

    def cleanup(self, dump=False):
        """Kills what is still running (only processes started here), removes temp dirs;
        with dump, prints each run's trace and errors first."""
        for run in self.started:
            if run.running():
                run.kill()
            if dump and not run.reported:
                print(run.logs())
            if os.environ.get("WAYPOINT_E2E_KEEP"):
                print(f"kept {run.work}")
            else:
                shutil.rmtree(run.work, ignore_errors=True)
        self.started = []
