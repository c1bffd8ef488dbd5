"""The asyncio client, on ``asyncio`` streams (no thread pool, no third-party HTTP library).

::

    from vanish_client import AsyncVanishClient, Selector

    vanish = AsyncVanishClient("http://127.0.0.1:8081")
    r = await vanish.purge(Selector.tag("post-42"), Selector.prefix("/blog/"))

The methods mirror :class:`vanish_client.VanishClient`; cancellation and timeouts stop the
request cleanly (the connection is closed).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from ._core import (
    DEFAULT_ADMIN_URL, DEFAULT_BACKOFF, DEFAULT_BATCH_SIZE, DEFAULT_RETRIES, DEFAULT_TIMEOUT,
    RETRY_STATUSES, Answer, ClientConfig, Prepared, chunks, decode,
)
from .errors import SelectorError, VanishConnectionError, VanishTimeoutError
from .results import BatchResult, Explanation, Health, PurgeResult
from .selectors import HARD, Mode, Selector

_MAX_HEADER_BYTES = 64 * 1024
_MAX_BODY_BYTES = 16 * 1024 * 1024


class _ProtocolError(Exception):
    """The server's answer is not well-formed HTTP/1.1."""


class AsyncVanishClient:
    """The asyncio twin of :class:`vanish_client.VanishClient` (same arguments, awaitable methods)."""

    def __init__(self, admin_url: str = DEFAULT_ADMIN_URL, token: Optional[str] = None,
                 timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES,
                 backoff: float = DEFAULT_BACKOFF,
                 ssl_context: Optional[ssl.SSLContext] = None) -> None:
        self.config = ClientConfig(admin_url, token, timeout, retries, backoff)
        self._ssl = ssl_context

    def __repr__(self) -> str:
        return f"AsyncVanishClient({self.config.admin_url!r})"

    # -- public API -----------------------------------------------------------------------

    async def purge(self, *selectors: Selector, mode: Mode = HARD,
                    dry_run: bool = False) -> PurgeResult:
        """Purges the union of ``selectors`` in one ``POST /invalidate``."""
        prepared = self.config.invalidate(selectors, mode, dry_run)
        return PurgeResult.from_json(await self._call(prepared))

    async def purge_many(self, selectors: Iterable[Selector], mode: Mode = HARD,
                         dry_run: bool = False,
                         batch_size: int = DEFAULT_BATCH_SIZE) -> BatchResult:
        """Purges any number of selectors, ``batch_size`` per request, one request at a time."""
        items = list(selectors)
        if not items:
            raise SelectorError("must not be empty: name at least one selector", "selectors")
        results = []
        for c in chunks(items, batch_size):
            results.append(await self.purge(*c, mode=mode, dry_run=dry_run))
        return BatchResult(results)

    def batch(self, mode: Mode = HARD, dry_run: bool = False,
              batch_size: int = DEFAULT_BATCH_SIZE) -> "AsyncBatch":
        """``async with vanish.batch() as b: b.add(...)`` sends everything at the end."""
        return AsyncBatch(self, mode, dry_run, batch_size)

    async def invalidate_raw(self, payload: Mapping[str, Any]) -> PurgeResult:
        """``POST /invalidate`` with a body as is (e.g. the IETF draft format)."""
        return PurgeResult.from_json(await self._call(self.config.invalidate_raw(payload)))

    async def varnish_purge(self, url: str) -> PurgeResult:
        """Varnish-style ``PURGE``: every variant of ``url``."""
        return PurgeResult.from_json(await self._call(self.config.varnish_purge(url)))

    async def varnish_purge_tags(self, *tags: str, soft: bool = False) -> PurgeResult:
        """Varnish-style ``PURGE`` with ``xkey-purge`` (``xkey-softpurge`` when ``soft``)."""
        return PurgeResult.from_json(await self._call(self.config.varnish_purge_tags(tags, soft)))

    async def explain(self, url: str, headers: Optional[Mapping[str, str]] = None) -> Explanation:
        """What the cache holds for ``url``."""
        return Explanation.from_json(await self._call(self.config.explain(url, headers)))

    async def health(self) -> Health:
        """``GET /healthz``; a degraded store (503) is returned, not raised."""
        return Health.from_json(await self._call(self.config.healthz(), ok_statuses=(503,),
                                                 retry_statuses=frozenset()))

    # -- transport ------------------------------------------------------------------------

    async def _call(self, prepared: Prepared, ok_statuses: Tuple[int, ...] = (),
                    retry_statuses: "frozenset[int]" = RETRY_STATUSES) -> Dict[str, Any]:
        cfg = self.config
        attempts = cfg.retries + 1
        url = f"{cfg.scheme}://{cfg.host}:{cfg.port}{prepared.path}"
        for attempt in range(1, attempts + 1):
            try:
                answer = await asyncio.wait_for(self._send(prepared), cfg.timeout)
            except asyncio.TimeoutError as e:
                if attempt == attempts:
                    raise VanishTimeoutError(f"no answer within {cfg.timeout}s",
                                             prepared.method, url, attempt) from e
            except (OSError, _ProtocolError, asyncio.IncompleteReadError) as e:
                if attempt == attempts:
                    raise VanishConnectionError(f"{type(e).__name__}: {e}", prepared.method,
                                                url, attempt) from e
            else:
                if answer.status not in retry_statuses or attempt == attempts:
                    return decode(prepared, answer, attempt, ok_statuses)
            await asyncio.sleep(cfg.delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(self, prepared: Prepared) -> Answer:
        cfg = self.config
        ctx = None
        if cfg.scheme == "https":
            ctx = self._ssl or ssl.create_default_context()
        reader, writer = await asyncio.open_connection(cfg.host, cfg.port, ssl=ctx)
        try:
            writer.write(_encode_request(prepared, cfg))
            await writer.drain()
            return await _read_answer(reader, prepared.method)
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (OSError, ssl.SSLError):
                pass


def _encode_request(p: Prepared, cfg: ClientConfig) -> bytes:
    default_port = 443 if cfg.scheme == "https" else 80
    host = cfg.host if cfg.port == default_port else f"{cfg.host}:{cfg.port}"
    if ":" in cfg.host and not cfg.host.startswith("["):  # IPv6 literal
        host = f"[{cfg.host}]" if cfg.port == default_port else f"[{cfg.host}]:{cfg.port}"
    headers = {"Host": host, **p.headers, "Connection": "close"}
    if p.body is not None:
        headers["Content-Length"] = str(len(p.body))
    lines = [f"{p.method} {p.path} HTTP/1.1"] + [f"{k}: {v}" for k, v in headers.items()]
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    return head + (p.body or b"")


async def _read_answer(reader: asyncio.StreamReader, method: str) -> Answer:
    while True:
        status, headers = await _read_head(reader)
        if status >= 200 or status == 101:
            break  # skip 1xx interim answers
    if method == "HEAD" or status in (204, 304):
        return Answer(status, b"")
    if "chunked" in headers.get("transfer-encoding", "").lower():
        return Answer(status, await _read_chunked(reader))
    if "content-length" in headers:
        try:
            length = int(headers["content-length"])
        except ValueError as e:
            raise _ProtocolError(f"bad Content-Length {headers['content-length']!r}") from e
        if not 0 <= length <= _MAX_BODY_BYTES:
            raise _ProtocolError(f"Content-Length {length} out of range")
        return Answer(status, await reader.readexactly(length))
    return Answer(status, await reader.read(_MAX_BODY_BYTES))


async def _read_head(reader: asyncio.StreamReader) -> Tuple[int, Dict[str, str]]:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as e:
        raise _ProtocolError("answer header too large") from e
    if len(raw) > _MAX_HEADER_BYTES:
        raise _ProtocolError("answer header too large")
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise _ProtocolError(f"bad status line {lines[0]!r}")
    headers: Dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep:
            raise _ProtocolError(f"bad header line {line!r}")
        key = name.strip().lower()
        headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return int(parts[1]), headers


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body: List[bytes] = []
    total = 0
    while True:
        size_line = (await reader.readuntil(b"\r\n")).split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError as e:
            raise _ProtocolError(f"bad chunk size {size_line!r}") from e
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass  # trailers
            return b"".join(body)
        total += size
        if total > _MAX_BODY_BYTES:
            raise _ProtocolError("answer body too large")
        body.append(await reader.readexactly(size))
        await reader.readexactly(2)


class AsyncBatch:
    """Selectors collected in an ``async with`` block and purged together when it ends."""

    def __init__(self, client: AsyncVanishClient, mode: Mode, dry_run: bool,
                 batch_size: int) -> None:
        self._client = client
        self._mode = mode
        self._dry_run = dry_run
        self._size = batch_size
        self.selectors: List[Selector] = []
        self.result: Optional[BatchResult] = None

    def add(self, *selectors: Selector) -> "AsyncBatch":
        """Adds selectors (duplicates are sent once)."""
        for s in selectors:
            if not isinstance(s, Selector):
                raise SelectorError(f"expected a Selector, got {type(s).__name__}", "selectors")
            if s not in self.selectors:
                self.selectors.append(s)
        return self

    async def send(self) -> Optional[BatchResult]:
        """Sends what was collected now."""
        if self.selectors:
            self.result = await self._client.purge_many(self.selectors, self._mode,
                                                        self._dry_run, self._size)
            self.selectors = []
        return self.result

    async def __aenter__(self) -> "AsyncBatch":
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            await self.send()
