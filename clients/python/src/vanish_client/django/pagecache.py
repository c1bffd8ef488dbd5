"""Drop-ins for Django's page cache, on Vanish's engine (embedded mode).

* :func:`cache_page` -- for ``django.views.decorators.cache.cache_page``, with ``tags=``;
* :class:`UpdateCacheMiddleware` and :class:`FetchFromCacheMiddleware` -- for Django's
  site-wide pair (first and last in ``MIDDLEWARE``), and :class:`CacheMiddleware` (both).

They keep Django's rules for *how long* a page is cached (``cache_page``'s timeout wins;
else the response's ``max-age``, else ``CACHE_MIDDLEWARE_SECONDS``; ``max-age=0`` and
``private`` are not cached; clients get ``Expires`` and ``max-age`` as with Django) and
``CACHE_MIDDLEWARE_KEY_PREFIX``. The lifetime reaches the engine through its own field
(``Vanish-Cache-Control``, never sent to clients); everything else is the engine's rules:
``Vary``, no response that sets a cookie, tags (``@cache_tags``, ``tags=``, rendered models),
what a purge matches. Responses carry ``Cache-Status`` (``vanish; hit``, ``vanish;
fwd=miss; stored``) and ``Age`` on hits.

Outside embedded mode (``VANISH['MODE']`` is ``"proxy"``) they fall back to Django's own
(``cache_page``, the middleware pair) so a project can switch modes in settings alone.
Sync and async views and middleware chains (WSGI and ASGI) are both served; under ASGI the
engine is called from a worker thread (``sync_to_async(thread_sensitive=False)``), so a
request waiting for another's render never blocks the event loop.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Dict, Iterable, Optional, Tuple

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings as django_settings
from django.http import HttpRequest, HttpResponseBase
from django.utils.cache import get_max_age, patch_response_headers

from . import embedded
from .caching import TagSource, _resolve, finish
from .conf import VanishSettings, get_settings
from .tags import add_tags

TARGETED_FIELD = "Vanish-Cache-Control"
"""The engine's own cache-control field (RFC 9213): the lifetime Django's rules give."""

MISS_ATTR = "_vanish_miss"


def set_lifetime(response: HttpResponseBase, page_timeout: Optional[int],
                 default_timeout: int) -> None:
    """Django's ``UpdateCacheMiddleware`` rules for a page's lifetime: the client-visible
    headers as Django patches them, and the same lifetime for the engine."""
    if response.streaming or response.status_code not in (200, 304):
        return
    cc = response.get("Cache-Control", "")
    if "private" in cc:
        return
    timeout = page_timeout
    if timeout is None:
        timeout = get_max_age(response)
        if timeout is None:
            timeout = default_timeout
        elif timeout == 0:
            return
    patch_response_headers(response, timeout)
    if timeout and response.status_code == 200 and "no-store" not in cc \
            and "no-cache" not in cc and not response.has_header(TARGETED_FIELD):
        response[TARGETED_FIELD] = f"max-age={int(timeout)}"


def _finish_page(request: HttpRequest, response: HttpResponseBase, tags: Tuple[Any, ...],
                 args: Tuple[Any, ...], kwargs: Dict[str, Any], page_timeout: Optional[int],
                 default_timeout: int, conf: VanishSettings) -> HttpResponseBase:
    """Renders a template response, writes the tag header and the lifetime."""
    if tags:
        add_tags(request, *_resolve(request, tags, args, kwargs))
    render = getattr(response, "render", None)
    if callable(render) and not getattr(response, "is_rendered", True):
        response = render() or response
    finish(request, response, None, conf)
    set_lifetime(response, page_timeout, default_timeout)
    return response


def cache_page(timeout: Optional[int], *, cache: Optional[str] = None,
               key_prefix: Optional[str] = None, tags: Iterable[TagSource] = ()) -> Callable:
    """Caches a view's pages in the embedded cache for ``timeout`` seconds (``None``:
    ``CACHE_MIDDLEWARE_SECONDS``), like Django's ``cache_page``, tagged with ``tags``
    (strings, model instances, querysets, or callables ``f(request, *args, **kwargs)``, as
    in :func:`~vanish_client.django.cache_tags`).

    ``key_prefix`` keeps these pages apart from the same URLs cached under another prefix
    (default ``CACHE_MIDDLEWARE_KEY_PREFIX``); purges match them all the same. ``cache``
    (Django's alias) is accepted for compatibility and only used outside embedded mode."""
    tag_sources = tuple(tags)

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        django_fallback: Dict[str, Callable[..., Any]] = {}

        def fallback() -> Callable[..., Any]:
            if "view" not in django_fallback:
                from django.views.decorators.cache import cache_page as django_cache_page

                django_fallback["view"] = django_cache_page(
                    timeout, cache=cache, key_prefix=key_prefix)(view)
            return django_fallback["view"]

        def prefix() -> str:
            return key_prefix if key_prefix is not None else \
                getattr(django_settings, "CACHE_MIDDLEWARE_KEY_PREFIX", "")

        def default_timeout() -> int:
            return int(getattr(django_settings, "CACHE_MIDDLEWARE_SECONDS", 600))

        if iscoroutinefunction(view):
            async def async_wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                conf = get_settings()
                if not conf.embedded:
                    return await fallback()(request, *args, **kwargs)
                if MISS_ATTR in request.__dict__:  # the site-wide pair caches this request
                    response = await view(request, *args, **kwargs)
                    return _finish_page(request, response, tag_sources, args, kwargs, timeout,
                                        default_timeout(), conf)
                step = await sync_to_async(embedded.lookup, thread_sensitive=False)(
                    request, prefix(), conf)
                if step is None:
                    return await view(request, *args, **kwargs)
                if not isinstance(step, embedded._engine.Miss):
                    return embedded.to_django(step, request)
                try:
                    response = await view(request, *args, **kwargs)
                    response = _finish_page(request, response, tag_sources, args, kwargs,
                                            timeout, default_timeout(), conf)
                except BaseException:
                    embedded.restore_request(request)
                    await sync_to_async(embedded.skip, thread_sensitive=False)(step, None, conf)
                    raise
                return await sync_to_async(embedded.store, thread_sensitive=False)(
                    request, step, response, conf)

            return functools.wraps(view)(async_wrapped)

        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            conf = get_settings()
            if not conf.embedded:
                return fallback()(request, *args, **kwargs)
            if MISS_ATTR in request.__dict__:
                # The site-wide pair caches this request already (its lookup leads the fill a
                # second lookup would wait for): give it this view's lifetime and tags.
                response = view(request, *args, **kwargs)
                return _finish_page(request, response, tag_sources, args, kwargs, timeout,
                                    default_timeout(), conf)
            step = embedded.lookup(request, prefix(), conf)
            if step is None:
                return view(request, *args, **kwargs)
            if not isinstance(step, embedded._engine.Miss):
                return embedded.to_django(step, request)
            try:
                response = view(request, *args, **kwargs)
                response = _finish_page(request, response, tag_sources, args, kwargs, timeout,
                                        default_timeout(), conf)
            except BaseException:
                embedded.restore_request(request)
                embedded.skip(step, None, conf)
                raise
            return embedded.store(request, step, response, conf)

        return functools.wraps(view)(wrapped)

    return decorate


class _Middleware:
    """Sync and async capable, like Django's own (``MiddlewareMixin``), but the engine is
    never called from the thread-sensitive executor under ASGI."""

    sync_capable = True
    async_capable = True
    django_class = ""

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)
        self._django: Optional[Any] = None

    def django(self) -> Any:
        """Django's own middleware of the same name (outside embedded mode)."""
        if self._django is None:
            from django.middleware import cache as django_cache

            self._django = getattr(django_cache, self.django_class)(self.get_response)
        return self._django

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        conf = get_settings()
        if not conf.embedded:
            return self.django()(request)
        early = self.before(request, conf)
        if early is not None:
            return early
        return self.after(request, self.get_response(request), conf)

    async def __acall__(self, request: HttpRequest) -> Any:
        conf = get_settings()
        if not conf.embedded:
            return await self.django()(request)
        early = await sync_to_async(self.before, thread_sensitive=False)(request, conf)
        if early is not None:
            return early
        response = await self.get_response(request)
        return await sync_to_async(self.after, thread_sensitive=False)(request, response, conf)

    def before(self, request: HttpRequest, conf: VanishSettings) -> Optional[HttpResponseBase]:
        return None

    def after(self, request: HttpRequest, response: HttpResponseBase,
              conf: VanishSettings) -> HttpResponseBase:
        return response


class FetchFromCacheMiddleware(_Middleware):
    """Last in ``MIDDLEWARE``: answers hits from the embedded cache; on a miss, lets the
    view render for :class:`UpdateCacheMiddleware` to store."""

    django_class = "FetchFromCacheMiddleware"

    def before(self, request: HttpRequest, conf: VanishSettings) -> Optional[HttpResponseBase]:
        prefix = getattr(django_settings, "CACHE_MIDDLEWARE_KEY_PREFIX", "")
        step = embedded.lookup(request, prefix, conf)
        if step is None:
            return None
        if isinstance(step, embedded._engine.Miss):
            setattr(request, MISS_ATTR, step)
            return None
        return embedded.to_django(step, request)


class UpdateCacheMiddleware(_Middleware):
    """First in ``MIDDLEWARE``: stores what the view rendered for
    :class:`FetchFromCacheMiddleware`'s miss, and answers with the engine's response."""

    django_class = "UpdateCacheMiddleware"

    def after(self, request: HttpRequest, response: HttpResponseBase,
              conf: VanishSettings) -> HttpResponseBase:
        miss = request.__dict__.pop(MISS_ATTR, None)
        if miss is None:
            return response
        seconds = int(getattr(django_settings, "CACHE_MIDDLEWARE_SECONDS", 600))
        try:
            response = _finish_page(request, response, (), (), {}, None, seconds, conf)
        except BaseException:
            embedded.restore_request(request)
            embedded.skip(miss, response, conf)
            raise
        return embedded.store(request, miss, response, conf)


class CacheMiddleware(_Middleware):
    """Both in one (Django's ``CacheMiddleware``), for a single place in ``MIDDLEWARE``."""

    django_class = "CacheMiddleware"

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        super().__init__(get_response)
        self.fetch = FetchFromCacheMiddleware(get_response)
        self.update = UpdateCacheMiddleware(get_response)

    def before(self, request: HttpRequest, conf: VanishSettings) -> Optional[HttpResponseBase]:
        return self.fetch.before(request, conf)

    def after(self, request: HttpRequest, response: HttpResponseBase,
              conf: VanishSettings) -> HttpResponseBase:
        return self.update.after(request, response, conf)
