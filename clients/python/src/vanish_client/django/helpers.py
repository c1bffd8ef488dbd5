"""The helpers Django ticket 31938 asks for, with Vanish as the page cache.

=====================================================================  ==========================================================================
Ask (ticket 31938)                                                     Call
=====================================================================  ==========================================================================
a URL with specific query params, whatever the headers                 ``invalidate_url("https://example.com/news?page=2")``
a URL with any query params, for specific header values                ``invalidate_url("https://example.com/news", any_query=True, headers={"accept-language": "fr"})``
a group of URLs                                                        ``invalidate_tags("news")`` or ``invalidate_prefix("/news/")``
each of the above by path instead of full URL                          ``invalidate_path("/news", query="page=2")``, ``invalidate_path("/news", any_query=True, headers={...})``, ``invalidate_prefix("/news/")``
=====================================================================  ==========================================================================

Each helper sends one admin request (deferred to the transaction's commit when inside
``atomic()``), returns the :class:`~vanish_client.PurgeResult` when sent at once (None when
deferred, batched, disabled or failed), and logs failures instead of raising unless
``VANISH['RAISE_ERRORS']``.
"""

from __future__ import annotations

from typing import Any, List, Mapping, Optional

from ..errors import SelectorError
from ..results import PurgeResult
from ..selectors import Selector
from .conf import get_settings
from .dispatch import purge
from .tags import tags_for

Headers = Optional[Mapping[str, str]]


def invalidate_url(url: str, headers: Headers = None, *, any_query: bool = False,
                   soft: bool = False, using: Optional[str] = None) -> Optional[PurgeResult]:
    """That URL (exact query string), every variant, any scheme.

    ``url`` may be relative (``/news?page=2``): it is joined to ``VANISH['SITE']``.
    ``headers`` keep only variants requested with those values (e.g. ``{"accept-language":
    "fr"}``); ``any_query`` matches every query string of the URL's path on that host.
    """
    sel = Selector.url(get_settings().absolute_url(url)).with_headers(headers)
    return purge(sel.any_query() if any_query else sel, soft=soft, using=using)


def invalidate_path(path: str, any_query: bool = False, headers: Headers = None,
                    host: Optional[str] = None, *, query: Optional[str] = None,
                    soft: bool = False, using: Optional[str] = None) -> Optional[PurgeResult]:
    """A path on every host (or only on ``host``, given as ``host[:port]`` as clients send it).

    Without ``any_query`` or ``query`` only the page without a query string matches; a query
    may also be given inline (``"/news?page=2"``).
    """
    if "?" in path:
        if query is not None:
            raise SelectorError("given both in the path and as query=", "query")
        path, query = path.split("?", 1)
    if any_query and query is not None:
        raise SelectorError("cannot be combined with any_query", "query")
    if host is not None:
        if not path.startswith("/"):
            raise SelectorError(f"must start with '/', got {path!r}", "path")
        sel = Selector.url(f"http://{host}{path}" + (f"?{query}" if query else ""))
    else:
        sel = Selector.path(path)
        if query is not None:
            sel = sel.query(query)
    if any_query:
        sel = sel.any_query()
    return purge(sel.with_headers(headers), soft=soft, using=using)


def invalidate_prefix(prefix: str, *, host: Optional[str] = None, headers: Headers = None,
                      soft: bool = False, using: Optional[str] = None) -> Optional[PurgeResult]:
    """Every path starting with ``prefix`` (on every host, or on ``host`` only)."""
    sel = Selector.prefix(prefix)
    if host is not None:
        sel = sel.on_host(host)
    return purge(sel.with_headers(headers), soft=soft, using=using)


def invalidate_tags(*tags: Any, soft: bool = False,
                    using: Optional[str] = None) -> Optional[PurgeResult]:
    """Every page tagged with any of ``tags`` (strings, or model instances, querysets and
    model classes, named as :func:`~vanish_client.django.tags.tags_for` names them)."""
    names: List[str] = []
    for item in tags:
        names.extend(t for t in tags_for(item) if t not in names)
    if not names:
        raise SelectorError("name at least one tag", "tags")
    return purge(*(Selector.tag(t) for t in names), soft=soft, using=using)


def invalidate_all(*, soft: bool = False, using: Optional[str] = None) -> Optional[PurgeResult]:
    """Everything Vanish holds."""
    return purge(Selector.all(), soft=soft, using=using)
