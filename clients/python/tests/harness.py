"""Real processes for the tests: the vanish binary and the Django test project's server,
on free loopback ports, with bounded waits; and a tiny HTTP client to request through Vanish.
"""

from __future__ import annotations

import http.client
import json
import os
import random
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
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def free_port() -> int:
    """A loopback port nobody listens on right now, below the ephemeral range when possible,
    so no outgoing connection can take it between now and the server binding it."""
    low = _ephemeral_low()
    for _ in range(50):
        port = random.randint(20000, max(20001, low - 1))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def vanish_binary() -> Path:
    """``$VANISH_BIN``, else ``<repo>/target/debug/vanish`` (run-tests.sh builds it)."""
    candidate = Path(os.environ.get("VANISH_BIN") or REPO / "target" / "debug" / "vanish")
    if not candidate.is_file():
        raise RuntimeError(
            f"vanish binary not found at {candidate}: build it with `cargo build -p vanish` "
            "or set VANISH_BIN (clients/python/run-tests.sh does this for you)")
    return candidate


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
             method: str = "GET", timeout: float = 10.0) -> Fetched:
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


def wait_until(check, what: str, timeout: float = START_TIMEOUT, proc=None, log=None) -> None:
    """Polls ``check()`` until true; fails after ``timeout`` s (or when ``proc`` exits)."""
    deadline = time.monotonic() + timeout
    last: Optional[BaseException] = None
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}:\n{tail(log)}")
        try:
            if check():
                return
        except (OSError, http.client.HTTPException) as e:
            last = e
        time.sleep(0.05)
    raise RuntimeError(f"{what} not ready after {timeout}s ({last}):\n{tail(log)}")


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


@dataclass
class Origin:
    """The Django test project under ``manage.py runserver``."""

    url: str
    proc: subprocess.Popen
    log: Path

    @classmethod
    def start(cls, port: int, env: Mapping[str, str], log: Path) -> "Origin":
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "manage.py", "runserver", "--noreload", "--skip-checks",
                 f"127.0.0.1:{port}"],
                cwd=PROJECT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL)
        origin = cls(f"http://127.0.0.1:{port}", proc, log)
        wait_until(lambda: http_get(origin.url, "/__requests__", timeout=1).status == 200,
                   "Django runserver", proc=proc, log=log)
        return origin

    def take(self) -> List[Tuple[str, Optional[str]]]:
        """(path, Accept-Language) of each request Django served since the last take()."""
        res = http_get(self.url, "/__requests__?reset=1")
        assert res.status == 200, res.body
        return [(r["path"], r["lang"]) for r in json.loads(res.body)["requests"]]

    def take_counted(self) -> Counter:
        return Counter(self.take())


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
    def start(cls, upstream: str, log: Path, proxy_port: Optional[int] = None,
              admin_port: Optional[int] = None, token: Optional[str] = None,
              extra: Sequence[str] = ()) -> "Vanish":
        proxy_port = proxy_port or free_port()
        admin_port = admin_port or free_port()
        args = [str(vanish_binary()), "serve", "--upstream", upstream,
                "--listen", f"127.0.0.1:{proxy_port}",
                "--admin-listen", f"127.0.0.1:{admin_port}", *extra]
        if token:
            args += ["--admin-token", token]
        env = {k: v for k, v in os.environ.items() if k != "VANISH_ADMIN_TOKEN"}
        with open(log, "ab") as out:
            proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, env=env)
        v = cls(f"http://127.0.0.1:{proxy_port}", f"http://127.0.0.1:{admin_port}", proc, log,
                token, args)
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        wait_until(lambda: http_get(v.admin, "/healthz", auth, timeout=1).status == 200,
                   "vanish", proc=proc, log=log)
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
