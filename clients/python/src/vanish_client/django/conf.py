"""The ``VANISH`` setting: defaults, validation, and the admin client built from it.

::

    VANISH = {
        "ADMIN_URL": "http://127.0.0.1:8081",   # Vanish's admin listener
        "TOKEN": None,                          # --admin-token, when set
        "SITE": "https://example.com",          # base of relative URLs and get_absolute_url()
    }

or, to cache pages inside Django through the engine (the ``vanish`` wheel's extension)::

    VANISH = {"MODE": "embedded", "STORE": "memory", "CAPACITY": "64MiB"}
    VANISH = {"MODE": "embedded", "STORE": "redis://127.0.0.1:6379/0"}

Every other key is optional; see :class:`VanishSettings` for the list and defaults. Settings are
read on each use, so ``override_settings(VANISH=...)`` works in tests.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields
from typing import Any, Dict, Optional, Tuple, Union
from urllib.parse import urljoin, urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from ..client import VanishClient

TAG_SEPARATORS = {"surrogate-key": " ", "xkey": " ", "cache-tag": ","}


@dataclass(frozen=True)
class VanishSettings:
    """The ``VANISH`` setting, with defaults. Keys are the field names in upper case."""

    admin_url: str = "http://127.0.0.1:8081"
    """Vanish's admin listener."""
    token: Optional[str] = None
    """Bearer token (``vanish serve --admin-token``); None when this host is allow-listed."""
    site: Optional[str] = None
    """Scheme and host of the public site, e.g. ``https://example.com``: relative URLs given to
    ``invalidate_url`` and models' ``get_absolute_url()`` are joined to it."""
    timeout: float = 5.0
    """Seconds for one admin request."""
    retries: int = 2
    """Extra attempts after connection errors and 5xx answers."""
    backoff: float = 0.2
    """First delay between attempts (doubles each time)."""
    raise_errors: bool = False
    """Raise :class:`~vanish_client.VanishError` when a purge fails, instead of logging it
    (turn on in tests; leave off in production so a cache outage never breaks a request)."""
    defer_to_commit: bool = True
    """Inside a transaction, send purges from ``transaction.on_commit`` (a rollback purges
    nothing, and no request can re-cache the old page between purge and commit)."""
    enabled: bool = True
    """False turns every purge into a no-op (logged at debug level)."""
    tag_header: str = "Surrogate-Key"
    """Response header carrying tags: ``Surrogate-Key`` or ``xkey`` (space-separated) or
    ``Cache-Tag`` (comma-separated); Vanish must be configured to read it."""
    max_age: int = 300
    """``s-maxage`` set by ``@cache_tags`` and by the middleware when ``CACHE_PAGES`` is on."""
    stale_while_revalidate: Optional[int] = None
    """When set, adds ``stale-while-revalidate=N`` to the ``Cache-Control`` that is set."""
    cache_pages: bool = False
    """Middleware: make every eligible GET/HEAD response cacheable, not only decorated views."""
    exclude_paths: Tuple[str, ...] = ("/admin/",)
    """Middleware with ``CACHE_PAGES``: path prefixes never made cacheable."""
    mode: str = "proxy"
    """``"proxy"``: a Vanish proxy caches the pages, purges go to its admin API.
    ``"embedded"``: Django caches pages itself through the engine (``cache_page`` and the
    middleware pair of :mod:`vanish_client.django`), and purges act on that cache; and on a
    proxy's too when ``ADMIN_URL`` is set."""
    store: str = "memory"
    """Embedded mode: ``"memory"`` (this process only) or a Redis URL (``redis://host:6379/0``,
    ``rediss://``, ``redis-cluster://``): shared by every worker and every proxy on it."""
    capacity: Union[str, int] = "64MiB"
    """Embedded mode: bytes kept in this process (the memory store, or the Redis store's L1)."""
    max_object_size: Union[str, int, None] = None
    """Embedded mode: largest body stored (default 16MiB)."""
    redis: Optional[Dict[str, Any]] = None
    """Embedded mode with Redis: keys of ``vanish.toml``'s ``[redis]`` section (``prefix``,
    ``l1_lease``, ``l1_capacity``, ``timeout``, ...), to match the proxies sharing it."""
    _admin_url_given: bool = field(default=False, repr=False)

    @property
    def embedded(self) -> bool:
        return self.mode == "embedded"

    @property
    def purges_proxy(self) -> bool:
        """Purges go to a proxy's admin API: in proxy mode, or with ``ADMIN_URL`` set."""
        return not self.embedded or self._admin_url_given

    def engine_options(self) -> Dict[str, Any]:
        """The embedded engine's options (``vanish_client._engine.EmbeddedCache``)."""
        opts: Dict[str, Any] = {"store": self.store, "capacity": self.capacity}
        if self.max_object_size is not None:
            opts["max_object_size"] = self.max_object_size
        if self.redis:
            opts["redis"] = dict(self.redis)
        return opts

    @property
    def tag_separator(self) -> str:
        return TAG_SEPARATORS[self.tag_header.lower()]

    def absolute_url(self, url: str) -> str:
        """``url`` itself when absolute; else joined to ``SITE`` (which must then be set)."""
        parts = urlsplit(url)
        if parts.scheme and parts.netloc:
            return url
        if not self.site:
            raise ImproperlyConfigured(
                f"VANISH['SITE'] must be set to purge the relative URL {url!r} "
                "(or pass an absolute URL)"
            )
        return urljoin(self.site, url)


_KEYS = {f.name.upper(): f for f in fields(VanishSettings) if not f.name.startswith("_")}
MODES = ("proxy", "embedded")


_last: list = [None, None]
"""The last ``settings.VANISH`` object read, and what it gave (every page request of
embedded mode reads the settings: they are checked once per value, not per request)."""


def get_settings() -> VanishSettings:
    """Reads and checks ``settings.VANISH``; raises ImproperlyConfigured naming a bad key."""
    source = getattr(settings, "VANISH", None)
    if source is not None and source is _last[0]:
        return _last[1]
    conf = _read(source)
    _last[0], _last[1] = source, conf
    return conf


def _read(source: Any) -> VanishSettings:
    raw: Dict[str, Any] = dict(source or {})
    unknown = sorted(set(raw) - set(_KEYS))
    if unknown:
        raise ImproperlyConfigured(
            f"VANISH: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_KEYS))})"
        )
    values = {k.lower(): v for k, v in raw.items()}
    if "exclude_paths" in values:
        values["exclude_paths"] = tuple(values["exclude_paths"] or ())
    conf = VanishSettings(**values, _admin_url_given="admin_url" in values)
    if conf.mode not in MODES:
        raise ImproperlyConfigured(f"VANISH['MODE'] must be 'proxy' or 'embedded', not {conf.mode!r}")
    if conf.redis is not None and not isinstance(conf.redis, dict):
        raise ImproperlyConfigured("VANISH['REDIS'] must be a dict of [redis] settings")
    if conf.tag_header.lower() not in TAG_SEPARATORS:
        raise ImproperlyConfigured(
            f"VANISH['TAG_HEADER'] must be Surrogate-Key, xkey or Cache-Tag, not {conf.tag_header!r}"
        )
    if conf.site and not urlsplit(conf.site).netloc:
        raise ImproperlyConfigured(f"VANISH['SITE'] must be like https://example.com, not {conf.site!r}")
    if conf.max_age < 0:
        raise ImproperlyConfigured("VANISH['MAX_AGE'] must be 0 or more")
    return conf


def get_client(conf: Optional[VanishSettings] = None) -> VanishClient:
    """The admin client for the current settings (one per distinct configuration)."""
    c = conf or get_settings()
    return _client(c.admin_url, c.token, float(c.timeout), int(c.retries), float(c.backoff))


@functools.lru_cache(maxsize=8)
def _client(admin_url: str, token: Optional[str], timeout: float, retries: int,
            backoff: float) -> VanishClient:
    try:
        return VanishClient(admin_url, token=token, timeout=timeout, retries=retries,
                            backoff=backoff)
    except ValueError as e:
        raise ImproperlyConfigured(f"VANISH: {e}") from e
