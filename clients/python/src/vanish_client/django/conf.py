"""The ``VANISH`` setting: defaults, validation, and the admin client built from it.

::

    VANISH = {
        "ADMIN_URL": "http://127.0.0.1:8081",   # Vanish's admin listener
        "TOKEN": None,                          # --admin-token, when set
        "SITE": "https://example.com",          # base of relative URLs and get_absolute_url()
    }

Every other key is optional; see :class:`VanishSettings` for the list and defaults. Settings are
read on each use, so ``override_settings(VANISH=...)`` works in tests.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from typing import Any, Dict, Optional, Tuple
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


_KEYS = {f.name.upper(): f for f in fields(VanishSettings)}


def get_settings() -> VanishSettings:
    """Reads and checks ``settings.VANISH``; raises ImproperlyConfigured naming a bad key."""
    raw: Dict[str, Any] = dict(getattr(settings, "VANISH", None) or {})
    unknown = sorted(set(raw) - set(_KEYS))
    if unknown:
        raise ImproperlyConfigured(
            f"VANISH: unknown key(s) {', '.join(unknown)} (known: {', '.join(sorted(_KEYS))})"
        )
    values = {k.lower(): v for k, v in raw.items()}
    if "exclude_paths" in values:
        values["exclude_paths"] = tuple(values["exclude_paths"] or ())
    conf = VanishSettings(**values)
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
