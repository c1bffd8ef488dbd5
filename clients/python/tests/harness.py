"""Real processes for the tests: the vanish binary and the Django test project's server,
on ports the kernel picks at bind time, with bounded waits; and a tiny HTTP client to request
through Vanish.

No port is chosen first and bound later (another process could take it in between): Vanish
binds port 0 and logs the addresses it got; the Django server is handed a socket the harness
bound and set listening itself. Every child is stopped when its fixture ends, when its start
fails, and (Linux) when the test process dies.
"""

from __future__ import annotations

import http.client
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

HERE = Path(__file__).resolve().parent
PROJECT = HERE / "project"
REPO = HERE.parents[2]
START_TIMEOUT = 60.0
"""A server start (Django + Wagtail import on a busy machine can take a while)."""
STOP_TIMEOUT = 10.0
REQUEST_TIMEOUT = 30.0
"""One request through Vanish or to an admin API: far above what any needs."""

_log_names = itertools.count()


def vanish_binary() -> Path:
    """``$VANISH_BIN``, else ``<repo>/target/debug/vanish`` (run-tests.sh builds it)."""
    candidate = Path(os.environ.get("VANISH_BIN") or REPO / "target" / "debug" / "vanish")
    if not candidate.is_file():
        raise RuntimeError(
            f"vanish binary not found at {candidate}: build it with `cargo build -p vanish` "
            "or set VANISH_BIN (clients/python/run-tests.sh does this for you)")
    return candidate


def pin_binary(scratch: Path) -> Path:
    """A link (or copy) of the vanish binary in ``scratch``, for every start of the run.

    ``cargo build`` replaces target/debug/vanish by removing it and linking the new one: a
    build running next to the tests must neither make a start fail nor mix two versions."""
    dest = scratch / "vanish"
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        src = Path(os.environ.get("VANISH_BIN") or REPO / "target" / "debug" / "vanish")
        try:
            _link_or_copy(src, dest)
            return dest
        except FileNotFoundError:
            if time.monotonic() >= deadline:
                vanish_binary()  # explains what is missing
                raise
            time.sleep(0.1)  # being replaced by a build: look again


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except FileNotFoundError:
        raise
    except OSError:  # another file system, or no hard links
        shutil.copy2(src, dest)


def listening_socket() -> socket.socket:
    """A loopback socket on a port the kernel picks, already listening."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def refuse_connections(url: str) -> socket.socket:
    """A socket holding ``url``'s port bound but not listening, so connections to it are
    refused until it is closed. Raises OSError when something listens there already.

    Bound without SO_REUSEADDR, no other socket can bind the port. If connections of the
    stopped server linger there in TIME_WAIT, that bind fails and it is bound with
    SO_REUSEADDR, which still keeps the kernel from handing the port to a bind to port 0."""
    host, port = url.split("://", 1)[1].split(":")
    try:
        return _bound(host, int(port), reuse=False)
    except OSError:
        return _bound(host, int(port), reuse=True)


def _bound(host: str, port: int, reuse: bool) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if reuse:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, port))
    except OSError:
        s.close()
        raise
    return s


def child_command(args: Sequence[str]) -> List[str]:
    """``args``, run so that the child gets SIGTERM if this process dies (Linux)."""
    return [sys.executable, str(HERE / "die_with_parent.py"), str(os.getpid()), *args]


def unique_log(folder: Path, stem: str) -> Path:
    """A log file name used by no other process of this run."""
    return folder / f"{stem}-{next(_log_names)}.log"


@dataclass
class Fetched:
    """One answer from the proxy."""

    status: int
    headers: Dict[str, str]
    body: str

    @property
    def cache_status(self) -> str:
        return self.headers.get("cache-status", "")

    @property
    def hit(self) -> bool:
        return "; hit" in self.cache_status

    @property
    def miss(self) -> bool:
        return "fwd=miss" in self.cache_status


def http_get(base: str, path: str, headers: Optional[Mapping[str, str]] = None,
             method: str = "GET", timeout: float = REQUEST_TIMEOUT) -> Fetched:
    """One request to ``base`` (``http://127.0.0.1:port``), no redirects, no proxies."""
    host, port = base.split("://", 1)[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, path, headers=dict(headers or {}))
        res = conn.getresponse()
        body = res.read().decode("utf-8", "replace")
        return Fetched(res.status, {k.lower(): v for k, v in res.getheaders()}, body)
    finally:
        conn.close()


def wait_until(check, what: str, timeout: float = START_TIMEOUT, proc=None, log=None):
    """Polls ``check()`` until it returns something true, and returns that; fails after
    ``timeout`` s, or as soon as ``proc`` exits, with the end of ``log``."""
    deadline = time.monotonic() + timeout
    last: Optional[BaseException] = None
    while True:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{tail(log)}")
        try:
            result = check()
            if result:
                return result
        except (OSError, http.client.HTTPException) as e:
            last = e
        if time.monotonic() >= deadline:
            raise RuntimeError(f"{what} not ready after {timeout}s ({last}):\n{tail(log)}")
        time.sleep(0.05)


def tail(log: Optional[Path], lines: int = 40) -> str:
    if log is None or not log.exists():
        return ""
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT; only this process."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(STOP_TIMEOUT)


def _started(proc: subprocess.Popen, ready) -> None:
    """Runs ``ready()``; if it fails, stops ``proc`` (it must not outlive a failed start)."""
    try:
        ready()
    except BaseException:
        stop(proc)
        raise


@dataclass
class Origin:
    """The Django test project, served by runserver (tests/project/runserver_fd.py: Django's
    runserver on a socket bound here)."""

    url: str
    proc: subprocess.Popen
    log: Path

    @classmethod
    def start(cls, sock: socket.socket, env: Mapping[str, str], log: Path,
              python: str = sys.executable) -> "Origin":
        """Serves on ``sock`` (bound and listening; see :func:`listening_socket`), with the
        interpreter ``python`` (another virtualenv's, for the wheel's tests)."""
        host, port = sock.getsockname()[:2]
        fd = sock.fileno()
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                child_command([python, "runserver_fd.py", f"{host}:{port}"]),
                cwd=PROJECT, env={**os.environ, **env, "VANISH_TEST_LISTEN_FD": str(fd),
                                  "PYTHONUNBUFFERED": "1"},
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                pass_fds=(fd,))
        origin = cls(f"http://{host}:{port}", proc, log)
        # Only the child serves this socket: whatever answers is this Django.
        _started(proc, lambda: wait_until(
            lambda: http_get(origin.url, "/__requests__", timeout=5).status == 200,
            "Django runserver", proc=proc, log=log))
        return origin

    def take(self) -> List[Tuple[str, Optional[str]]]:
        """(path, Accept-Language) of each request Django served since the last take()."""
        res = http_get(self.url, "/__requests__?reset=1")
        assert res.status == 200, res.body
        return [(r["path"], r["lang"]) for r in json.loads(res.body)["requests"]]

    def take_counted(self) -> Counter:
        return Counter(self.take())


# vanish's start-up line (whole: up to its newline), naming the addresses it bound (other
# fields, such as tls_addr, may stand between them).
_STARTED = re.compile(r"vanish started proxy_addr=(\S+) (?:[^\n]* )?admin_addr=(\S+)[^\n]*\n")


@dataclass
class Vanish:
    """One ``vanish serve`` process."""

    proxy: str
    admin: str
    proc: subprocess.Popen
    log: Path
    token: Optional[str] = None
    args: List[str] = field(default_factory=list)

    @classmethod
    def start(cls, binary: Path, upstream: str, log: Path, token: Optional[str] = None,
              extra: Sequence[str] = ()) -> "Vanish":
        """Starts ``binary serve`` on ports it binds itself (port 0), and reads them from its
        log; returns once its admin API answers."""
        args = [str(binary), "serve", "--upstream", upstream,
                "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", *extra]
        if token:
            args += ["--admin-token", token]
        env = {k: v for k, v in os.environ.items() if k != "VANISH_ADMIN_TOKEN"}
        # The start-up line naming the bound addresses is logged at info.
        env["RUST_LOG"] = f"{env.get('RUST_LOG') or 'info'},vanish::server=info"
        offset = log.stat().st_size if log.exists() else 0
        with open(log, "ab") as out:
            proc = subprocess.Popen(child_command(args), stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env)

        def addresses():
            with open(log, "rb") as f:
                f.seek(offset)
                m = _STARTED.search(f.read().decode("utf-8", "replace"))
            return m and (m.group(1), m.group(2))

        v = cls("", "", proc, log, token, args)

        def ready():
            proxy, admin = wait_until(addresses, "vanish (its start-up line)", proc=proc,
                                      log=log)
            v.proxy, v.admin = f"http://{proxy}", f"http://{admin}"
            auth = {"Authorization": f"Bearer {token}"} if token else {}
            wait_until(lambda: http_get(v.admin, "/healthz", auth, timeout=5).status == 200,
                       "vanish", proc=proc, log=log)

        _started(proc, ready)
        return v

    def get(self, path: str, lang: Optional[str] = None,
            headers: Optional[Mapping[str, str]] = None) -> Fetched:
        """GET through the proxy, with Accept-Language when ``lang`` is given."""
        h = dict(headers or {})
        if lang:
            h["Accept-Language"] = lang
        return http_get(self.proxy, path, h)

    def stop(self) -> None:
        stop(self.proc)


def free_port() -> int:
    """A loopback port free right now (for servers that cannot bind port 0 and say which:
    redis-server). Another process may take it before the server binds: callers start the
    server again on another port when it exits at start (see RedisServer.start)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_command(port: int, command: str, timeout: float = 5.0) -> str:
    """One inline command to a Redis on 127.0.0.1:port; its raw answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(command.encode() + b"\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            data += chunk
            if not chunk or _resp_complete(data):
                return data.decode("utf-8", "replace")


def _resp_complete(data: bytes) -> bool:
    if data.startswith(b"$"):
        head, _, rest = data.partition(b"\r\n")
        n = int(head[1:] or b"-1")
        return n < 0 or len(rest) >= n + 2
    return data.endswith(b"\r\n")


@dataclass
class RedisServer:
    """A real ``redis-server`` on a free loopback port, without persistence."""

    port: int
    proc: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, log: Path, port: Optional[int] = None, attempts: int = 10) -> "RedisServer":
        """Starts it on ``port`` (or a free one; on another free one each time a start fails
        because the port was taken meanwhile). Started means: the server answering on the
        port is the process spawned for it (its INFO names the child's pid)."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server not found: apt-get install redis-server")
        last = ""
        for _ in range(attempts):
            p = port or free_port()
            with open(log, "ab") as out:
                proc = subprocess.Popen(
                    child_command([binary, "--port", str(p), "--bind", "127.0.0.1",
                                   "--save", "", "--appendonly", "no"]),
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            server = cls(p, proc, log)

            def ours():
                # die_with_parent.py execs the server: the pid is the one spawned.
                return f"process_id:{proc.pid}\r\n" in redis_command(p, "INFO server", 1)

            try:
                wait_until(ours, f"redis-server on {p}", timeout=START_TIMEOUT, proc=proc,
                           log=log)
                return server
            except RuntimeError as e:
                last = str(e)
                stop(proc)
                if port is not None:
                    time.sleep(0.2)  # a restart on its own port: the old socket may linger
        raise RuntimeError(f"redis-server did not start: {last}")

    def stop(self) -> None:
        stop(self.proc)


@dataclass
class Gunicorn:
    """The test project under gunicorn (pre-fork workers), on a socket bound here."""

    url: str
    proc: subprocess.Popen
    log: Path

    @classmethod
    def start(cls, venv_python: str, env: Mapping[str, str], log: Path, workers: int = 2,
              preload: bool = True, settings: str = "testsite.settings_embedded") -> "Gunicorn":
        sock = listening_socket()
        try:
            host, port = sock.getsockname()[:2]
            fd = sock.fileno()
            args = [venv_python, "-m", "gunicorn", "testsite.wsgi:application",
                    "--bind", f"fd://{fd}", "--workers", str(workers), "--timeout", "120",
                    "--graceful-timeout", "5"]
            if preload:
                args.append("--preload")
            with open(log, "ab") as out:
                proc = subprocess.Popen(
                    child_command(args), cwd=PROJECT,
                    env={**os.environ, **env, "DJANGO_SETTINGS_MODULE": settings,
                         "PYTHONUNBUFFERED": "1"},
                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    pass_fds=(fd,))
        finally:
            sock.close()
        g = cls(f"http://{host}:{port}", proc, log)
        _started(proc, lambda: wait_until(
            lambda: http_get(g.url, "/__requests__", timeout=5).status == 200,
            "gunicorn", proc=proc, log=log))
        return g

    def get(self, path: str, lang: Optional[str] = None) -> Fetched:
        return http_get(self.url, path, {"Accept-Language": lang} if lang else {})

    def post(self, path: str, form: Mapping[str, str]) -> Fetched:
        from urllib.parse import urlencode

        host, port = self.url.split("://", 1)[1].split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=REQUEST_TIMEOUT)
        try:
            conn.request("POST", path, body=urlencode(form),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            res = conn.getresponse()
            return Fetched(res.status, {k.lower(): v for k, v in res.getheaders()},
                           res.read().decode("utf-8", "replace"))
        finally:
            conn.close()

    def stop(self) -> None:
        stop(self.proc)
