"""Harness for the end-to-end tests: runs the real waypointd on loopback and talks SIP to it.

Stdlib only. Everything here only touches processes it started itself (by PID) and only
sends traffic to 127.0.0.1 or ::1.
"""

import os
import re
import secrets
import signal
import socket
import subprocess
import tempfile
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


def ipv6_loopback_usable():
    if not socket.has_ipv6:
        return False
    return _bindable(socket.AF_INET6, socket.SOCK_DGRAM, "::1", 0) and \
        _bindable(socket.AF_INET6, socket.SOCK_STREAM, "::1", 0)


def hostport(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# ---------------------------------------------------------------- the daemon


def _yaml_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Daemon:
    """One waypointd process on a free loopback port with its own temp config.

    Use as a context manager: entering starts it and waits for the ready line; leaving
    sends SIGTERM and asserts a clean exit (code 0, no sanitizer report).
    """

    def __init__(self, binary, listen=(("udp", "127.0.0.1"), ("tcp", "127.0.0.1")), limits=None, timers=None):
        self.binary = binary
        self.timers = {"t1": "500ms", "t2": "4s", "t4": "5s"}
        self.timers.update(timers or {})
        self.listen = tuple(listen)
        self.limits = {"max_message_size": 65536, "tcp_idle_timeout": "600s",
                       "tcp_max_connections_per_source": 64}
        self.limits.update(limits or {})
        self._tmp = tempfile.TemporaryDirectory(prefix="waypoint-e2e-")
        self.dir = self._tmp.name
        self.config_path = os.path.join(self.dir, "waypoint.yaml")
        self.metrics_path = os.path.join(self.dir, "metrics.prom")
        self.stderr_path = os.path.join(self.dir, "stderr.log")
        self.proc = None
        self.port = None
        self.stopped = False

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

    def write_config(self):
        hosts = sorted({addr for _, addr in self.listen})
        self.port = free_port(hosts=tuple(hosts))
        lines = ["listen:"]
        for transport, addr in self.listen:
            lines.append(f"  - {{ transport: {transport}, address: {_yaml_str(addr)}, port: {self.port} }}")
        limits = ", ".join(f"{k}: {v}" for k, v in self.limits.items())
        lines += [
            "domains: [localhost]",
            "names: [localhost]",
            "timers: { " + ", ".join(f"{k}: {v}" for k, v in self.timers.items()) + " }",
            f"limits: {{ {limits} }}",
            "log: { level: debug }",
            f"metrics: {{ file: {_yaml_str(self.metrics_path)} }}",
        ]
        with open(self.config_path, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self):
        # Another process may grab our "free" port before the daemon binds it; then the
        # daemon exits at start-up and we try again with a new port.
        for attempt in range(3):
            self.write_config()
            self._stderr_file = open(self.stderr_path, "w")
            self.proc = subprocess.Popen([self.binary, "-c", self.config_path],
                                         stdin=subprocess.DEVNULL, stdout=self._stderr_file,
                                         stderr=subprocess.STDOUT)
            deadline = time.monotonic() + START_TIMEOUT
            while time.monotonic() < deadline:
                if READY_LINE in self.stderr():
                    return
                if self.proc.poll() is not None:
                    break
                time.sleep(0.02)
            else:
                self._terminate_quietly()
                raise AssertionError(f"waypointd not ready after {START_TIMEOUT} s:\n{self._tail()}")
            text = self.stderr()
            if "in use" in text and attempt < 2:
                self._stderr_file.close()
                continue
            raise AssertionError(f"waypointd exited with {self.proc.returncode} at start-up:\n{self._tail()}")

    def stop(self):
        """SIGTERM, then asserts exit code 0 and no sanitizer report. Once only."""
        if self.stopped:
            return
        self.stopped = True
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
        if getattr(self, "_stderr_file", None):
            self._stderr_file.close()
        if os.environ.get("WAYPOINT_E2E_KEEP"):
            print(f"kept {self.dir}")
        else:
            self._tmp.cleanup()

    # -- what it said

    def stderr(self):
        with open(self.stderr_path, errors="replace") as f:
            return f.read()

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


def read_metrics(path):
    values = {}
    with open(path) as f:
        for line in f:
            m = re.match(r"waypoint_(\w+)(?:\{[^}]*\})?\s+(\S+)\s*$", line)
            if m:
                values[m.group(1)] = float(m.group(2))
    return values


# ---------------------------------------------------------------- SIP messages


def token():
    return secrets.token_hex(8)


class Request:
    """A request we send, with the values its response is matched by."""

    def __init__(self, data, call_id, branch):
        self.data, self.call_id, self.branch = data, call_id, branch


def make_request(method, uri, local, transport="UDP", *, cseq_method=None, omit=(),
                 headers=(), body="", content_length=None, call_id=None, branch=None,
                 to_tag=None):
    """A request as bytes; `omit` drops headers by name to make it malformed on purpose."""
    call_id = call_id or token() + "@e2e.invalid"
    branch = branch or "z9hG4bK" + token()
    via_host = hostport(*local)
    to = f"<{uri}>" + (f";tag={to_tag}" if to_tag else "")
    fields = [
        ("Via", f"SIP/2.0/{transport} {via_host};branch={branch};rport"),
        ("Max-Forwards", "70"),
        ("From", f"<sip:e2e@{via_host}>;tag={token()}"),
        ("To", to),
        ("Call-ID", call_id),
        ("CSeq", f"1 {cseq_method or method}"),
        *headers,
        ("Content-Length", str(len(body.encode())) if content_length is None else str(content_length)),
    ]
    text = f"{method} {uri} SIP/2.0\r\n"
    text += "".join(f"{n}: {v}\r\n" for n, v in fields if n not in omit)
    text += "\r\n" + body
    return Request(text.encode(), call_id, branch)


_COMPACT = {"v": "via", "i": "call-id", "l": "content-length", "f": "from", "t": "to",
            "k": "supported", "c": "content-type", "m": "contact"}


class Response:
    def __init__(self, data):
        self.raw = data
        head, _, self.body = data.partition(b"\r\n\r\n")
        lines = head.decode("utf-8", "replace").split("\r\n")
        m = re.match(r"SIP/2\.0 (\d{3}) (.*)$", lines[0])
        assert m, f"not a SIP response: {data[:200]!r}"
        self.code, self.reason = int(m.group(1)), m.group(2)
        self.headers = []
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            self.headers.append((_COMPACT.get(name, name), value.strip()))

    def header(self, name):
        """All values of a header (full or compact name), in order."""
        return [v for n, v in self.headers if n == name.lower()]

    def matches(self, request):
        via = self.header("via")
        return bool(via) and f"branch={request.branch}" in via[0]

    def __repr__(self):
        return f"<{self.code} {self.reason}>"


def assert_options_ok(response):
    assert response.code == 200, f"expected 200 to OPTIONS, got {response.code} {response.reason}"
    for name in ("allow", "accept", "supported"):
        assert response.header(name), f"200 to OPTIONS lacks {name}:\n{response.raw.decode(errors='replace')}"
    assert "OPTIONS" in ",".join(response.header("allow")), f"Allow does not list OPTIONS: {response.header('allow')}"


# ---------------------------------------------------------------- clients


class UdpClient:
    def __init__(self, server_port, host="127.0.0.1"):
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.bind((host, 0))
        self.server = (host, server_port)
        self.local = (host, self.sock.getsockname()[1])
        self.unmatched = []

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendto(data, self.server)

    def recv(self, timeout):
        """One datagram from the server, or None after timeout."""
        self.sock.settimeout(timeout)
        try:
            data, peer = self.sock.recvfrom(65536)
        except socket.timeout:
            return None
        assert peer[:2] == self.server, f"datagram from unexpected peer {peer}"
        return data

    def response_to(self, request, timeout=REPLY_TIMEOUT):
        """Waits for the response matching request's Via branch; others are kept aside."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            data = self.recv(left)
            if data is None:
                break
            response = Response(data)
            if response.matches(request):
                return response
            self.unmatched.append(response)
        raise AssertionError(f"no response within {timeout} s to:\n{request.data[:300].decode(errors='replace')}")

    def transact(self, request, timeout=REPLY_TIMEOUT):
        self.send(request.data)
        return self.response_to(request, timeout)


class TcpClient:
    def __init__(self, server_port, host="127.0.0.1"):
        self.sock = socket.create_connection((host, server_port), timeout=REPLY_TIMEOUT)
        self.local = self.sock.getsockname()[:2]
        self.buf = b""

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out on TCP; buffered {self.buf[:200]!r}")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise AssertionError(f"timed out on TCP; buffered {self.buf[:200]!r}") from None
        if not chunk:
            raise AssertionError(f"server closed the connection; buffered {self.buf[:200]!r}")
        self.buf += chunk

    def recv_exact(self, n, timeout=REPLY_TIMEOUT):
        deadline = time.monotonic() + timeout
        while len(self.buf) < n:
            self._fill(deadline)
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def read_response(self, timeout=REPLY_TIMEOUT):
        """The next response on the stream, framed by Content-Length (RFC 3261 §18.3)."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            self._fill(deadline)
        head_end = self.buf.index(b"\r\n\r\n") + 4
        m = re.search(rb"^(?:content-length|l)[ \t]*:[ \t]*(\d+)", self.buf[:head_end], re.I | re.M)
        assert m, f"response on TCP without Content-Length: {self.buf[:head_end]!r}"
        end = head_end + int(m.group(1))
        while len(self.buf) < end:
            self._fill(deadline)
        data, self.buf = self.buf[:end], self.buf[end:]
        return Response(data)

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


# ---------------------------------------------------------------- SIPp


class Sipp:
    """Runs one SIPp scenario as a UAC; every port it opens is chosen free, on loopback."""

    def __init__(self, binary, scenario_dir):
        self.binary = binary
        self.scenario_dir = os.path.abspath(scenario_dir)  # SIPp runs in a temp cwd

    def run(self, scenario, server_host, server_port, transport="u1", timeout=40):
        local = "::1" if ":" in server_host else "127.0.0.1"
        with tempfile.TemporaryDirectory(prefix="waypoint-sipp-") as work:
            for attempt in range(3):
                sip_port = free_port(hosts=(local,))
                # SIPp's control socket (default 8888) and RTP echo ports (mp, mp+2) must
                # not collide with anything else on the machine.
                control_port = free_port(hosts=("127.0.0.1",), kinds=(socket.SOCK_DGRAM,))
                media_port = free_port(hosts=(local,), kinds=(socket.SOCK_DGRAM,), span=4)
                cmd = [self.binary, hostport(server_host, server_port),
                       "-sf", os.path.join(self.scenario_dir, scenario),
                       "-t", transport, "-i", local, "-p", str(sip_port),
                       "-ci", "127.0.0.1", "-cp", str(control_port),
                       "-mi", local, "-mp", str(media_port),
                       "-m", "1", "-timeout", "10s", "-timeout_error", "-recv_timeout", "5s",
                       "-nostdin", "-trace_msg", "-trace_err",
                       "-message_file", os.path.join(work, "messages.log"),
                       "-error_file", os.path.join(work, "errors.log")]
                proc = subprocess.run(cmd, cwd=work, stdin=subprocess.DEVNULL,
                                      capture_output=True, timeout=timeout)
                # 254 (-2): SIPp could not bind a socket, i.e. we lost a port race; retry.
                if proc.returncode != 254:
                    break
            if proc.returncode != 0:
                logs = ""
                for name in ("messages.log", "errors.log"):
                    path = os.path.join(work, name)
                    if os.path.exists(path):
                        with open(path, errors="replace") as f:
                            logs += f"--- sipp {name} ---\n{f.read()[-4000:]}\n"
                raise AssertionError(
                    f"sipp exited with {proc.returncode}: {' '.join(cmd)}\n"
                    f"--- sipp stderr ---\n{proc.stderr.decode(errors='replace')[-3000:]}\n{logs}")
