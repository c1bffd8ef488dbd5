"""What the sync and async clients share: configuration, request building, answer decoding
and the retry policy. No I/O happens here.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple
from urllib.parse import urlencode, urlsplit

from ._version import __version__
from .errors import SelectorError, VanishAPIError
from .selectors import HARD, Mode, Selector, purge_body

DEFAULT_ADMIN_URL = "http://127.0.0.1:8081"
DEFAULT_TIMEOUT = 5.0
DEFAULT_RETRIES = 2
DEFAULT_BACKOFF = 0.2
MAX_BACKOFF = 5.0
DEFAULT_BATCH_SIZE = 500
"""Selectors per request in a batch: keeps bodies far below the server's 1 MiB limit."""

# Statuses worth another try: the server (or something in front of it) failed.
RETRY_STATUSES = frozenset({500, 502, 503, 504})


@dataclass(frozen=True)
class Prepared:
    """One HTTP request, ready to send."""

    method: str
    path: str
    headers: Dict[str, str]
    body: Optional[bytes] = None


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, as read off the wire."""

    status: int
    body: bytes


@dataclass(frozen=True)
class ClientConfig:
    """Where the admin API is and how to talk to it.

    Args:
        admin_url: base URL of the admin listener, e.g. ``http://127.0.0.1:8081``.
        token: bearer token (``--admin-token``); None when the caller is allow-listed.
        timeout: seconds for one attempt (connect + answer).
        retries: extra attempts after a connection error, timeout or 5xx answer
            (4xx answers are never retried).
        backoff: first delay between attempts in seconds; doubles each time (capped at 5 s),
            with up to 10 % jitter.
    """

    admin_url: str = DEFAULT_ADMIN_URL
    token: Optional[str] = None
    timeout: float = DEFAULT_TIMEOUT
    retries: int = DEFAULT_RETRIES
    backoff: float = DEFAULT_BACKOFF

    def __post_init__(self) -> None:
        parts = urlsplit(self.admin_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SelectorError(
                f"must be an http:// or https:// URL, got {self.admin_url!r}", "admin_url"
            )
        if parts.username or parts.password:
            raise SelectorError("must not carry credentials; pass token= instead", "admin_url")
        if self.timeout <= 0:
            raise SelectorError("must be positive", "timeout")
        if self.retries < 0:
            raise SelectorError("must be 0 or more", "retries")
        if self.backoff < 0:
            raise SelectorError("must be 0 or more", "backoff")

    @property
    def scheme(self) -> str:
        return urlsplit(self.admin_url).scheme

    @property
    def host(self) -> str:
        return urlsplit(self.admin_url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        parts = urlsplit(self.admin_url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def base_path(self) -> str:
        """Path prefix of the admin API (when it sits behind a path-routing proxy)."""
        return urlsplit(self.admin_url).path.rstrip("/")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt + 1`` (``attempt`` counts from 1)."""
        base = min(self.backoff * float(2 ** (attempt - 1)), MAX_BACKOFF)
        return base * (1 + random.uniform(0, 0.1))

    # -- request builders -----------------------------------------------------------------

    def _headers(self, extra: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
        h = {"User-Agent": f"vanish-client-python/{__version__}", "Accept": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        if extra:
            h.update(extra)
        return h

    def invalidate(self, selectors: Sequence[Selector], mode: Mode = HARD,
                   dry_run: bool = False) -> Prepared:
        """``POST /invalidate`` for these selectors (one request)."""
        return self.invalidate_raw(purge_body(list(selectors), mode, dry_run))

    def invalidate_raw(self, payload: Mapping[str, Any]) -> Prepared:
        """``POST /invalidate`` with a body given as is (e.g. the IETF draft format)."""
        body = json.dumps(payload, separators=(",", ":")).encode()
        return Prepared("POST", self.base_path + "/invalidate",
                        self._headers({"Content-Type": "application/json"}), body)

    def varnish_purge(self, url: str) -> Prepared:
        """Varnish-style ``PURGE <path>`` with ``Host`` naming the site of ``url``."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise SelectorError(f"must be an absolute http(s) URL, got {url!r}", "url")
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return Prepared("PURGE", self.base_path + path, self._headers({"Host": parts.netloc}))

    def varnish_purge_tags(self, tags: Iterable[str], soft: bool = False) -> Prepared:
        """``PURGE /`` with ``xkey-purge`` (or ``xkey-softpurge``) naming the tags."""
        checked = [Selector.tag(t).value or "" for t in tags]
        if not checked:
            raise SelectorError("name at least one tag", "tags")
        header = "xkey-softpurge" if soft else "xkey-purge"
        return Prepared("PURGE", self.base_path + "/", self._headers({header: " ".join(checked)}))

    def explain(self, url: str, headers: Optional[Mapping[str, str]] = None) -> Prepared:
        """``GET /explain?url=...&header=Name:Value``."""
        normalised = Selector.url(url).value or url  # as a url selector names it
        pairs: List[Tuple[str, str]] = [("url", normalised)]
        for name, value in (headers or {}).items():
            Selector.path("/").header(name, value)  # validates the name
            pairs.append(("header", f"{name}:{value}"))
        return Prepared("GET", f"{self.base_path}/explain?{urlencode(pairs)}", self._headers())

    def healthz(self) -> Prepared:
        """``GET /healthz``."""
        return Prepared("GET", self.base_path + "/healthz", self._headers())


def decode(prepared: Prepared, answer: Answer, attempts: int = 1,
           ok_statuses: Tuple[int, ...] = ()) -> Dict[str, Any]:
    """The JSON object of a 2xx answer (or of a status in ``ok_statuses``).

    Raises :class:`VanishAPIError` for anything else, carrying the server's JSON error.
    """
    parsed: Optional[Dict[str, Any]] = None
    try:
        value = json.loads(answer.body.decode("utf-8")) if answer.body else None
        if isinstance(value, dict):
            parsed = value
    except (ValueError, UnicodeDecodeError):
        parsed = None
    if 200 <= answer.status < 300 or answer.status in ok_statuses:
        if parsed is None:
            raise VanishAPIError(answer.status, "answer is not a JSON object: "
                                 + answer.body[:200].decode("utf-8", "replace"),
                                 method=prepared.method, path=prepared.path, attempts=attempts)
        return parsed
    if parsed is not None and "error" in parsed:
        raise VanishAPIError(answer.status, str(parsed["error"]), parsed.get("field"), parsed,
                             prepared.method, prepared.path, attempts)
    text = answer.body[:500].decode("utf-8", "replace").strip() or "(empty body)"
    raise VanishAPIError(answer.status, text, None, parsed, prepared.method, prepared.path,
                         attempts)


def chunks(selectors: Sequence[Selector], size: int) -> List[List[Selector]]:
    """Splits a batch into requests of at most ``size`` selectors."""
    if size < 1:
        raise SelectorError("must be at least 1", "batch_size")
    return [list(selectors[i:i + size]) for i in range(0, len(selectors), size)]
