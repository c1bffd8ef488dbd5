"""The four asks of Django ticket 31938 in embedded mode: Django caches its own pages through
Vanish's engine (the site-wide middleware pair of vanish_client.django), on the memory store
and on a real Redis, and the helpers purge that cache.

The very tests of test_django_asks.py run here (imported below), with ``cache``, ``origin``
and ``site`` pointing at Django itself: requests go through Django's test client (the real
handler and middleware stack, in this process), and ``origin`` counts the renders (the
counting middleware sits innermost, behind FetchFromCacheMiddleware). Exactly the pages a
helper names must render again, once each; every other page stays a hit.
"""

from __future__ import annotations

from collections import Counter
from typing import Dict, List, Mapping, Optional, Tuple

import pytest
from django.conf import settings
from django.test import Client
from django.test.utils import override_settings

from harness import Fetched
from test_django_asks import (  # noqa: F401  (collected here, with this module's fixtures)
    test_ask1_relative_url_is_joined_to_site, test_ask1_url_with_query_all_variants,
    test_ask1_url_without_query_matches_only_the_bare_url,
    test_ask2_header_filter_without_any_query,
    test_ask2_pages_not_varying_on_the_header_match_every_value,
    test_ask2_url_any_query_for_one_language, test_ask3_everything, test_ask3_group_by_prefix,
    test_ask3_group_by_shared_tag, test_ask3_group_by_tag, test_ask3_several_tags_in_one_request,
    test_ask4_non_ascii_path, test_ask4_path_any_query_for_one_language,
    test_ask4_path_matches_every_host_but_host_restricts, test_ask4_path_with_query,
    test_ask4_path_with_query_argument, test_ask4_path_without_query_is_exact,
    test_ask4_prefix_on_one_host, test_invalid_arguments_raise_before_sending,
)

pytestmark = pytest.mark.embedded

SITE = "http://127.0.0.1:8000"
"""The host clients name (as a proxy's would be); any port: the key keeps it."""


def embedded_settings(store: str, **extra) -> Dict:
    conf = {k: v for k, v in settings.VANISH.items() if k not in ("ADMIN_URL", "SITE")}
    conf.update({"MODE": "embedded", "STORE": store, "SITE": SITE, "RAISE_ERRORS": True})
    conf.update(extra)
    return conf


class EmbeddedSite:
    """Requests to Django in this process, as the proxy fixtures make them."""

    def __init__(self, store: str) -> None:
        self.store = store
        self.client = Client(HTTP_HOST=SITE.split("://", 1)[1])

    def get(self, path: str, lang: Optional[str] = None,
            headers: Optional[Mapping[str, str]] = None) -> Fetched:
        h = dict(headers or {})
        if lang:
            h["Accept-Language"] = lang
        extra = {}
        if "Host" in h:
            extra["HTTP_HOST"] = h.pop("Host")
        res = self.client.get(path, headers=h, **extra)
        body = b"".join(res.streaming_content) if res.streaming else res.content
        return Fetched(res.status_code, {k.lower(): v for k, v in res.items()},
                       body.decode("utf-8", "replace"))


class Renders:
    """The renders the counting middleware saw (it is innermost: only misses reach it)."""

    def take(self) -> List[Tuple[str, Optional[str]]]:
        from testsite import counting

        return counting.take()

    def take_counted(self) -> Counter:
        return Counter(self.take())


@pytest.fixture(params=["memory", "redis"])
def store(request) -> str:
    if request.param == "memory":
        return "memory"
    return request.getfixturevalue("redis_server").url


@pytest.fixture
def cache(store: str, migrated) -> EmbeddedSite:
    from vanish_client.django import invalidate_all

    with override_settings(VANISH=embedded_settings(store),
                           MIDDLEWARE=settings.EMBEDDED_MIDDLEWARE):
        invalidate_all()
        Renders().take()
        yield EmbeddedSite(store)


@pytest.fixture
def origin(cache) -> Renders:
    return Renders()


@pytest.fixture
def site(cache) -> str:
    return SITE
