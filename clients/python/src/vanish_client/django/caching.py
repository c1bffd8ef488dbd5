"""Response headers for Vanish: ``Cache-Control: public, s-maxage=N`` and the tag header.

* :func:`cache_tags` -- a view decorator: makes the view's responses cacheable for ``max_age``
  seconds and tags them.
* :class:`VanishMiddleware` -- writes the tags collected while rendering (model instances and
  querysets of a ``TemplateResponse``, ``{% vanish_tags %}``, :func:`add_tags`), makes every
  eligible page cacheable when ``VANISH['CACHE_PAGES']`` is on, and takes ``public`` back from
  responses that set a cookie. Put it first in ``MIDDLEWARE`` so it sees the final response.

A response is made cacheable only when it answers GET or HEAD with a cacheable status, sets
no cookie and has no ``Cache-Control`` yet (a view's own ``never_cache`` or ``private`` wins).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple, Union

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings as django_settings
from django.http import HttpRequest, HttpResponseBase

from .conf import VanishSettings, get_settings
from .tags import add_tags, context_tags, request_tags, unique

logger = logging.getLogger("vanish_client")

CACHEABLE_STATUSES = frozenset({200, 203, 300, 301, 308, 404, 410})
SPEC_ATTR = "_vanish_cache"
ANSWERED_ATTR = "_vanish_answered"
"""Set on the embedded cache's answers (embedded mode): a response already cached, whose tag
header the engine kept for itself."""
MARK_ATTR = "_vanish_cache_control_set"
"""The Cache-Control value this module set (to tell it from one set by another layer)."""

TagSource = Union[str, Any, Callable[..., Any]]


@dataclass(frozen=True)
class CacheSpec:
    """How long a shared cache may keep a response."""

    max_age: int
    stale_while_revalidate: Optional[int] = None

    def header(self) -> str:
        value = f"public, s-maxage={self.max_age}"
        if self.stale_while_revalidate:
            value += f", stale-while-revalidate={self.stale_while_revalidate}"
        return value


def cacheable(request: HttpRequest, response: HttpResponseBase) -> Optional[str]:
    """None when ``response`` may be made public; else the reason why not."""
    if request.method not in ("GET", "HEAD"):
        return f"method {request.method}"
    if response.status_code not in CACHEABLE_STATUSES:
        return f"status {response.status_code}"
    if response.cookies:
        return "it sets a cookie"
    if response.has_header("Cache-Control") and response["Cache-Control"] != getattr(
            response, MARK_ATTR, None):
        return "the view set Cache-Control"
    if "HTTP_AUTHORIZATION" in request.META:
        return "the request carries Authorization"
    return None


def finish(request: HttpRequest, response: HttpResponseBase,
           spec: Optional[CacheSpec], conf: Optional[VanishSettings] = None) -> HttpResponseBase:
    """Writes the tag header (merged with any the view set) and, when ``spec`` is given and
    the response is eligible, ``Cache-Control``. Safe to call more than once."""
    conf = conf or get_settings()
    if getattr(response, ANSWERED_ATTR, False):
        return response  # the embedded cache's answer: tags and lifetime were read already
    rendered = getattr(response, "context_data", None)
    if rendered:
        add_tags(request, *context_tags(rendered))
    tags = request_tags(request)
    if tags:
        existing = response.get(conf.tag_header, "")
        parts = [t.strip() for t in existing.replace(",", " ").split()] if existing else []
        response[conf.tag_header] = conf.tag_separator.join(unique(parts + tags))
    if spec is not None:
        setattr(response, SPEC_ATTR, spec)
        reason = cacheable(request, response)
        ours = getattr(response, MARK_ATTR, None)
        if reason is None:
            response["Cache-Control"] = spec.header()
            setattr(response, MARK_ATTR, response["Cache-Control"])
        elif ours is not None and response.get("Cache-Control") == ours:
            # Made public earlier (by the decorator), but a later layer set a cookie.
            response["Cache-Control"] = "private"
            setattr(response, MARK_ATTR, None)
            logger.warning("vanish: %s is not cacheable after all: %s", request.path, reason)
        else:
            logger.debug("vanish: %s left uncacheable: %s", request.path, reason)
    return response


def _resolve(request: HttpRequest, sources: Tuple[Any, ...], args: Tuple[Any, ...],
             kwargs: Dict[str, Any]) -> List[Any]:
    out: List[Any] = []
    for source in sources:
        value = source(request, *args, **kwargs) if callable(source) and not isinstance(
            source, type) else source
        if isinstance(value, (list, tuple, set)) and not isinstance(value, str):
            out.extend(value)
        else:
            out.append(value)
    return out


def cache_tags(*tags: TagSource, max_age: Optional[int] = None,
               stale_while_revalidate: Optional[int] = None) -> Callable[[Any], Any]:
    """View decorator: responses are cacheable for ``max_age`` seconds (default
    ``VANISH['MAX_AGE']``) and tagged with ``tags``.

    Each tag may be a string, a model instance, queryset or model class (see
    :func:`~vanish_client.django.tags.tags_for`), or a callable ``f(request, *args, **kwargs)``
    returning any of these (or a list), e.g.
    ``@cache_tags("products", lambda request, pk: f"product-{pk}")``.
    Model instances and querysets a ``TemplateResponse`` renders are added automatically.
    Works on sync and async views; for class-based views use ``method_decorator``.
    """

    def decorate(view: Callable[..., Any]) -> Callable[..., Any]:
        def after(request: HttpRequest, response: HttpResponseBase, args: Tuple[Any, ...],
                  kwargs: Dict[str, Any]) -> HttpResponseBase:
            conf = get_settings()
            add_tags(request, *_resolve(request, tags, args, kwargs))
            spec = CacheSpec(
                conf.max_age if max_age is None else max_age,
                conf.stale_while_revalidate if stale_while_revalidate is None
                else stale_while_revalidate,
            )
            render_later = getattr(response, "add_post_render_callback", None)
            if render_later is not None and not getattr(response, "is_rendered", True):
                render_later(lambda r: finish(request, r, spec))
                setattr(response, SPEC_ATTR, spec)
                return response
            return finish(request, response, spec, conf)

        if iscoroutinefunction(view):
            async def async_wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
                response = await view(request, *args, **kwargs)
                return after(request, response, args, kwargs)

            return functools.wraps(view)(async_wrapped)

        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            return after(request, view(request, *args, **kwargs), args, kwargs)

        return functools.wraps(view)(wrapped)

    return decorate


class VanishMiddleware:
    """Writes tags and ``Cache-Control`` for Vanish; put it first in ``MIDDLEWARE``."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Union[HttpResponseBase,
                                                      Awaitable[HttpResponseBase]]:
        if self.is_async:
            return self.__acall__(request)
        return self.process(request, self.get_response(request))

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        return self.process(request, await self.get_response(request))

    def process(self, request: HttpRequest, response: HttpResponseBase) -> HttpResponseBase:
        """Applies the decorator's spec, or the site-wide one under ``CACHE_PAGES``."""
        conf = get_settings()
        spec: Optional[CacheSpec] = getattr(response, SPEC_ATTR, None)
        if spec is None and conf.cache_pages and self.site_wide(request, conf):
            spec = CacheSpec(conf.max_age, conf.stale_while_revalidate)
        return finish(request, response, spec, conf)

    @staticmethod
    def site_wide(request: HttpRequest, conf: VanishSettings) -> bool:
        """``CACHE_PAGES`` applies: not an excluded path, no session cookie (a signed-in
        visitor's pages are not shared)."""
        if any(request.path.startswith(p) for p in conf.exclude_paths):
            return False
        return django_settings.SESSION_COOKIE_NAME not in request.COOKIES
