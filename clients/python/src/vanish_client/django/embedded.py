"""Embedded mode: Django caches its pages itself, through Vanish's engine.

With ``VANISH = {"MODE": "embedded", "STORE": "memory" | "redis://..."}`` the drop-ins of
:mod:`vanish_client.django.pagecache` (``cache_page``, the middleware pair) serve pages
through ``vanish_client._engine``, the engine of the ``vanish`` binary built as a Python
extension (it ships in the ``vanish`` wheel). Every rule is the engine's: whether a response
may be stored and for how long (RFC 9111), ``Vary``, the key, tags, what a purge matches.
This module only carries a Django request to the engine and the engine's answer back:

* :func:`lookup` -- the engine answers from the cache (an ``Answer``), or asks for the view's
  response (a ``Miss``);
* :func:`store` -- hands the view's response to the engine; returns the client's response;
* :func:`purge_json` -- runs a purge (the helpers of :mod:`vanish_client.django` call it).

A cache failure (Redis down, the engine refusing a request) never fails the request: it is
logged on the ``vanish_client`` logger, counted in :data:`stats`, and the page is served
uncached; ``VANISH['RAISE_ERRORS']`` raises :class:`~vanish_client.EmbeddedCacheError`
instead (for tests). Streamed responses are never stored.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from typing import Any, Dict, List, Optional, Tuple

from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, HttpResponseBase

from ..errors import EmbeddedCacheError
from .caching import ANSWERED_ATTR
from .conf import VanishSettings, get_settings

try:
    from .. import _engine
except ImportError:  # the pure-Python package: proxy mode only
    _engine = None

logger = logging.getLogger("vanish_client")

stats: Counter = Counter()
"""What the embedded cache did in this process: ``hit``, ``rendered`` (the view ran for
the engine), ``uncached`` (a streamed response passed), ``errors`` (a cache failure; the
page was served uncached)."""

HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                        "te", "trailer", "upgrade", "proxy-authenticate",
                        "proxy-authorization"})
"""Fields a WSGI application may not send (PEP 3333); the server frames the response."""

ORIGIN_REQUEST_FIELDS = ("if-none-match", "if-modified-since", "if-match",
                         "if-unmodified-since", "if-range", "range")
"""Request fields the engine sets itself on the request the view gets: its validators when
it revalidates, never the client's own conditionals and ranges (it answers those)."""

_lock = threading.Lock()
_caches: Dict[Any, Any] = {}
"""Options JSON -> engine (one per distinct configuration); and id(settings) -> (settings,
engine), so a request does not serialise the options again."""


def available() -> bool:
    """True when the engine extension is installed (the ``vanish`` wheel)."""
    return _engine is not None


def get_cache(conf: Optional[VanishSettings] = None) -> Any:
    """The ``EmbeddedCache`` for the current settings (one per distinct configuration).

    Raises ImproperlyConfigured when not in embedded mode, when the extension is missing, or
    when an option is invalid. Building it starts nothing: the engine starts on first use in
    each process (so after a pre-fork server's fork)."""
    conf = conf or get_settings()
    if not conf.embedded:
        raise ImproperlyConfigured("VANISH['MODE'] is not 'embedded'")
    if _engine is None:
        raise ImproperlyConfigured(
            "VANISH['MODE'] = 'embedded' needs the engine extension: install the vanish "
            "wheel (scripts/wheel.sh builds it), not only the pure-Python vanish-client")
    cache = _caches.get(id(conf))
    if cache is not None and cache[0] is conf:
        return cache[1]
    key = json.dumps(conf.engine_options(), sort_keys=True)
    with _lock:
        engine = _caches.get(key)
        if engine is None:
            try:
                engine = _engine.EmbeddedCache(key)
            except ValueError as e:
                raise ImproperlyConfigured(str(e)) from e
            _caches[key] = engine
        if len(_caches) > 64:  # settings objects of many overrides (tests): keep engines only
            for k in [k for k in _caches if not isinstance(k, str)]:
                del _caches[k]
        _caches[id(conf)] = (conf, engine)
    return engine


def failed(what: str, error: BaseException, conf: VanishSettings) -> None:
    """Logs and counts a cache failure; raises it with ``RAISE_ERRORS``."""
    stats["errors"] += 1
    logger.error("vanish: embedded cache: %s failed: %s", what, error)
    if conf.raise_errors:
        raise EmbeddedCacheError(f"{what}: {error}") from error


def _engine_errors() -> Tuple[type, ...]:
    return (_engine.EngineError, ValueError) if _engine is not None else (ValueError,)


def request_headers(request: HttpRequest) -> List[Tuple[str, str]]:
    """The request's header fields as the client sent them (``Host`` apart)."""
    out = []
    for k, v in request.META.items():
        if k.startswith("HTTP_") and k != "HTTP_HOST" and isinstance(v, str):
            out.append((k[5:].replace("_", "-").lower(), v))
    for k, name in (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length")):
        if request.META.get(k):
            out.append((name, str(request.META[k])))
    return out


def lookup(request: HttpRequest, key_prefix: Optional[str] = None,
           conf: Optional[VanishSettings] = None) -> Any:
    """The engine's ``Answer`` (serve it), a ``Miss`` (render the view, then :func:`store`),
    or None when the cache cannot be used for this request (then serve it uncached)."""
    conf = conf or get_settings()
    if request.method not in ("GET", "HEAD"):
        return None
    try:
        authority = request.get_host()
    except Exception:  # DisallowedHost and the like: Django answers it, uncached
        return None
    try:
        cache = get_cache(conf)
        step = cache.lookup(request.method, authority, request.get_full_path(),
                            request_headers(request), key_prefix or None)
    except _engine_errors() as e:
        failed("lookup", e, conf)
        return None
    if isinstance(step, _engine.Miss):
        _prepare_request(request, step)
        if cache.store_kind != "memory":
            # The engine serves a store outage as misses that are not stored: say so once
            # per request (health is a flag, not a round trip).
            try:
                cache.health()
            except _engine.EngineError as e:
                failed("the store", e, conf)
    else:
        stats["hit" if step.hit else "answered"] += 1
    return step


def _prepare_request(request: HttpRequest, miss: Any) -> None:
    """Makes the request the view gets the engine's origin request: its method (a ``HEAD``
    is filled with a ``GET``) and its conditional fields."""
    sent = {n: v for n, v in miss.headers if n in ORIGIN_REQUEST_FIELDS}
    for name in ORIGIN_REQUEST_FIELDS:
        key = "HTTP_" + name.upper().replace("-", "_")
        if name in sent:
            request.META[key] = sent[name]
        else:
            request.META.pop(key, None)
    if request.method != miss.method:
        request._vanish_method = request.method
        request.method = miss.method


def restore_request(request: HttpRequest) -> None:
    """Undoes the method change of a ``HEAD`` filled with a ``GET`` (for outer layers)."""
    method = request.__dict__.pop("_vanish_method", None)
    if method is not None:
        request.method = method


def response_headers(response: HttpResponseBase) -> List[Tuple[str, str]]:
    """The response's fields as a server would send them, ``Set-Cookie`` included (the engine
    never stores a response that sets a cookie)."""
    headers = [(k, str(v)) for k, v in response.items()]
    headers += [("set-cookie", c.output(header="").strip()) for c in response.cookies.values()]
    return headers


def store(request: HttpRequest, miss: Any, response: HttpResponseBase,
          conf: Optional[VanishSettings] = None) -> HttpResponseBase:
    """Hands the view's response to the engine, which stores what may be stored; returns the
    client's response (the engine's answer; the view's own response if the cache failed or
    the response streams)."""
    conf = conf or get_settings()
    restore_request(request)
    if response.streaming:
        stats["uncached"] += 1
        return _skip(miss, response, conf)
    stats["rendered"] += 1
    try:
        status, headers, body = response.status_code, response_headers(response), response.content
        step = miss.store(status, headers, body)
        for _ in range(3):  # the engine asks again only when the first answer did not do
            if not isinstance(step, _engine.Miss):
                break
            step = step.store(status, headers, body)
        else:
            step.skip(status)
            return response
    except _engine_errors() as e:
        failed("store", e, conf)
        return response
    return to_django(step, request, response)


def skip(miss: Any, response: Optional[HttpResponseBase] = None,
         conf: Optional[VanishSettings] = None) -> None:
    """Tells the engine this render is not to be stored (the view raised)."""
    _skip(miss, response, conf or get_settings())


def _skip(miss: Any, response: Optional[HttpResponseBase],
          conf: VanishSettings) -> Optional[HttpResponseBase]:
    try:
        miss.skip(response.status_code if response is not None else 500)
    except _engine_errors() as e:
        failed("skip", e, conf)
    return response


def _field_name(name: str) -> str:
    return "-".join(p.capitalize() for p in name.split("-"))


def to_django(answer: Any, request: HttpRequest,
              original: Optional[HttpResponseBase] = None) -> HttpResponse:
    """The engine's answer as a Django response (cookies of ``original`` kept: the engine
    stores no response that sets one, so those are the view's own, passed)."""
    body = answer.body
    res = HttpResponse(body, status=answer.status)
    del res["Content-Type"]
    merged: Dict[str, str] = {}
    for name, value in answer.headers:
        if name in HOP_BY_HOP or name == "set-cookie":
            continue
        merged[name] = f"{merged[name]}, {value}" if name in merged else value
    length = merged.get("content-length")
    if length is not None and request.method != "HEAD" and length != str(len(body)):
        del merged["content-length"]
    for name, value in merged.items():
        res[_field_name(name)] = value
    if original is not None:
        res.cookies = original.cookies
    setattr(res, ANSWERED_ATTR, True)
    return res


def purge_json(body: Dict[str, Any], conf: Optional[VanishSettings] = None) -> int:
    """Runs one purge (the admin API's JSON) on the embedded cache; returns the matched count.

    Raises :class:`~vanish_client.EmbeddedCacheError` when the store could not purge, and
    :class:`~vanish_client.SelectorError` for a purge the engine refuses."""
    from ..errors import SelectorError

    try:
        return int(get_cache(conf).purge(json.dumps(body)))
    except ValueError as e:
        raise SelectorError(str(e), "selectors") from e
    except _engine_errors() as e:
        stats["errors"] += 1
        raise EmbeddedCacheError(f"purge: {e}") from e
