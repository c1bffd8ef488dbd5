"""The synchronous client, on the standard library's ``http.client``.

::

    from vanish_client import VanishClient, Selector

    vanish = VanishClient("http://127.0.0.1:8081", token=None, timeout=5, retries=2)
    r = vanish.purge(Selector.path("/news").any_query().header("accept-language", "fr"))
    print(r.matched)

Environment proxies (``HTTP_PROXY``...) are never used: the admin API is called directly.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from ._core import (
    DEFAULT_ADMIN_URL, DEFAULT_BACKOFF, DEFAULT_BATCH_SIZE, DEFAULT_RETRIES, DEFAULT_TIMEOUT,
    RETRY_STATUSES, Answer, ClientConfig, Prepared, chunks, decode,
)
from .errors import SelectorError, VanishConnectionError, VanishTimeoutError
from .results import BatchResult, Explanation, Health, PurgeResult
from .selectors import HARD, Mode, Selector


class VanishClient:
    """Talks to Vanish's admin API; thread-safe (each call opens its own connection).

    Args:
        admin_url: the admin listener, e.g. ``http://127.0.0.1:8081``.
        token: bearer token when Vanish runs with ``--admin-token``.
        timeout: seconds allowed for one attempt.
        retries: extra attempts after connection errors, timeouts and 5xx answers
            (never after 4xx: those are the caller's mistake and raise at once).
        backoff: first delay between attempts, doubled each time.
        ssl_context: for an ``https://`` admin URL (default: the system's trust store).
    """

    def __init__(self, admin_url: str = DEFAULT_ADMIN_URL, token: Optional[str] = None,
                 timeout: float = DEFAULT_TIMEOUT, retries: int = DEFAULT_RETRIES,
                 backoff: float = DEFAULT_BACKOFF,
                 ssl_context: Optional[ssl.SSLContext] = None) -> None:
        self.config = ClientConfig(admin_url, token, timeout, retries, backoff)
        self._ssl = ssl_context

    def __repr__(self) -> str:
        return f"VanishClient({self.config.admin_url!r})"

    # -- public API -----------------------------------------------------------------------

    def purge(self, *selectors: Selector, mode: Mode = HARD, dry_run: bool = False) -> PurgeResult:
        """Purges the union of ``selectors`` in one ``POST /invalidate``.

        When this returns, no request starting afterwards is served a matched object stored
        before the purge.
        """
        prepared = self.config.invalidate(selectors, mode, dry_run)
        return PurgeResult.from_json(self._call(prepared))

    def purge_many(self, selectors: Iterable[Selector], mode: Mode = HARD, dry_run: bool = False,
                   batch_size: int = DEFAULT_BATCH_SIZE) -> BatchResult:
        """Purges any number of selectors in as few requests as possible (``batch_size`` each)."""
        items = list(selectors)
        if not items:
            raise SelectorError("must not be empty: name at least one selector", "selectors")
        return BatchResult([self.purge(*c, mode=mode, dry_run=dry_run)
                            for c in chunks(items, batch_size)])

    def batch(self, mode: Mode = HARD, dry_run: bool = False,
              batch_size: int = DEFAULT_BATCH_SIZE) -> "Batch":
        """A context manager collecting selectors, sent together when the block ends::

            with vanish.batch() as b:
                for post in posts:
                    b.add(Selector.tag(f"post-{post.id}"))
            print(b.result.matched)
        """
        return Batch(self, mode, dry_run, batch_size)

    def invalidate_raw(self, payload: Mapping[str, Any]) -> PurgeResult:
        """``POST /invalidate`` with a body as is (e.g. the IETF draft format)."""
        return PurgeResult.from_json(self._call(self.config.invalidate_raw(payload)))

    def varnish_purge(self, url: str) -> PurgeResult:
        """Varnish-style ``PURGE``: every variant of ``url`` (answers even when nothing matched)."""
        return PurgeResult.from_json(self._call(self.config.varnish_purge(url)))

    def varnish_purge_tags(self, *tags: str, soft: bool = False) -> PurgeResult:
        """Varnish-style ``PURGE`` with ``xkey-purge`` (``xkey-softpurge`` when ``soft``)."""
        return PurgeResult.from_json(self._call(self.config.varnish_purge_tags(tags, soft)))

    def explain(self, url: str, headers: Optional[Mapping[str, str]] = None) -> Explanation:
        """What the cache holds for ``url``; ``headers`` pick the variant a request would get."""
        return Explanation.from_json(self._call(self.config.explain(url, headers)))

    def health(self) -> Health:
        """``GET /healthz``; a degraded store (503) is returned, not raised."""
        return Health.from_json(self._call(self.config.healthz(), ok_statuses=(503,),
                                           retry_statuses=frozenset()))

    # -- transport ------------------------------------------------------------------------

    def _call(self, prepared: Prepared, ok_statuses: Tuple[int, ...] = (),
              retry_statuses: "frozenset[int]" = RETRY_STATUSES) -> Dict[str, Any]:
        """Sends with retries; returns the JSON answer or raises a :class:`VanishError`."""
        cfg = self.config
        attempts = cfg.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                answer = self._send(prepared)
            except socket.timeout as e:
                if attempt == attempts:
                    raise VanishTimeoutError(f"no answer within {cfg.timeout}s ({e})",
                                             prepared.method, self._url(prepared), attempt) from e
            except (OSError, http.client.HTTPException) as e:
                if attempt == attempts:
                    raise VanishConnectionError(f"{type(e).__name__}: {e}", prepared.method,
                                                self._url(prepared), attempt) from e
            else:
                if answer.status not in retry_statuses or attempt == attempts:
                    return decode(prepared, answer, attempt, ok_statuses)
            time.sleep(cfg.delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover

    def _url(self, prepared: Prepared) -> str:
        return f"{self.config.scheme}://{self.config.host}:{self.config.port}{prepared.path}"

    def _send(self, prepared: Prepared) -> Answer:
        cfg = self.config
        conn: http.client.HTTPConnection
        if cfg.scheme == "https":
            conn = http.client.HTTPSConnection(cfg.host, cfg.port, timeout=cfg.timeout,
                                               context=self._ssl or ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(cfg.host, cfg.port, timeout=cfg.timeout)
        try:
            conn.request(prepared.method, prepared.path, body=prepared.body,
                         headers={**prepared.headers, "Connection": "close"})
            res = conn.getresponse()
            return Answer(res.status, res.read())
        finally:
            conn.close()


class Batch:
    """Selectors collected in a ``with`` block and purged together when it ends.

    Nothing is sent when the block raises. After the block, ``result`` holds the
    :class:`BatchResult` (None when nothing was added).
    """

    def __init__(self, client: VanishClient, mode: Mode, dry_run: bool, batch_size: int) -> None:
        self._client = client
        self._mode = mode
        self._dry_run = dry_run
        self._size = batch_size
        self.selectors: List[Selector] = []
        self.result: Optional[BatchResult] = None

    def add(self, *selectors: Selector) -> "Batch":
        """Adds selectors (duplicates are sent once)."""
        for s in selectors:
            if not isinstance(s, Selector):
                raise SelectorError(f"expected a Selector, got {type(s).__name__}", "selectors")
            if s not in self.selectors:
                self.selectors.append(s)
        return self

    def send(self) -> Optional[BatchResult]:
        """Sends what was collected now (the ``with`` block does it for you)."""
        if self.selectors:
            self.result = self._client.purge_many(self.selectors, self._mode, self._dry_run,
                                                  self._size)
            self.selectors = []
        return self.result

    def __enter__(self) -> "Batch":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.send()
