"""The four asks of Django ticket 31938, end to end through the real Vanish binary.

Each test warms the same set of pages (paths x query strings x languages, each cached),
calls one helper, then requests every page again through Vanish and checks, from Django's
own request log, that exactly the pages the helper names reached Django, once each, and
that every other page was a cache hit.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, List, Optional, Set, Tuple

import pytest

from vanish_client.django import (
    invalidate_all, invalidate_path, invalidate_prefix, invalidate_tags, invalidate_url,
)

Page = Tuple[str, str]  # (path with query, Accept-Language)

PATHS = ["/news", "/news?page=2", "/news?page=3", "/news/a", "/news/b"]  # Vary: Accept-Language
LANGS = ["en", "fr"]
# /about does not vary: one cached object answers every language, so it is warmed once.
ALL: List[Page] = [(p, lang) for p in PATHS for lang in LANGS] + [("/about", "en")]


def warm(cache, origin, pages: Iterable[Page] = ALL) -> None:
    """Requests every page twice: Django sees each once, the second round is all hits."""
    pages = list(pages)
    for path, lang in pages:
        assert cache.get(path, lang).miss, f"{path} {lang} was already cached"
    for path, lang in pages:
        res = cache.get(path, lang)
        assert res.hit, f"{path} ({lang}) not cached: {res.cache_status}"
    assert origin.take_counted() == Counter(pages)


def refetch(cache, origin, pages: Iterable[Page] = ALL) -> Set[Page]:
    """Requests every page once; returns those that reached Django (each at most once)."""
    missed = set()
    for path, lang in pages:
        res = cache.get(path, lang)
        assert res.status == 200
        if not res.hit:
            missed.add((path, lang))
    seen = origin.take_counted()
    assert all(n == 1 for n in seen.values()), f"a page reached Django twice: {seen}"
    assert set(seen) == missed, "Cache-Status and Django's log disagree"
    return missed


def pages(paths: Iterable[str], langs: Optional[Iterable[str]] = None) -> Set[Page]:
    return {(p, lang) for p in paths for lang in (langs or LANGS)}


# -- ask 1: a URL with specific query params, no matter the headers ---------------------------

def test_ask1_url_with_query_all_variants(cache, origin, site):
    warm(cache, origin)
    result = invalidate_url(f"{site}/news?page=2")
    assert result is not None and result.matched == 2  # en and fr
    assert refetch(cache, origin) == pages(["/news?page=2"])


def test_ask1_relative_url_is_joined_to_site(cache, origin):
    warm(cache, origin)
    invalidate_url("/news?page=3")
    assert refetch(cache, origin) == pages(["/news?page=3"])


def test_ask1_url_without_query_matches_only_the_bare_url(cache, origin, site):
    warm(cache, origin)
    invalidate_url(f"{site}/news")
    assert refetch(cache, origin) == pages(["/news"])


# -- ask 2: a URL with any query params, for specific header values --------------------------

def test_ask2_url_any_query_for_one_language(cache, origin, site):
    warm(cache, origin)
    result = invalidate_url(f"{site}/news", any_query=True, headers={"Accept-Language": "fr"})
    assert result is not None and result.matched == 3
    assert refetch(cache, origin) == pages(["/news", "/news?page=2", "/news?page=3"], ["fr"])


def test_ask2_header_filter_without_any_query(cache, origin, site):
    warm(cache, origin)
    invalidate_url(f"{site}/news?page=2", headers={"accept-language": "en"})
    assert refetch(cache, origin) == {("/news?page=2", "en")}


def test_ask2_pages_not_varying_on_the_header_match_every_value(cache, origin, site):
    """/about does not vary on Accept-Language: one object serves both languages, so a
    French-only purge takes it too (it would serve French visitors)."""
    warm(cache, origin)
    assert cache.get("/about", "fr").hit  # the English-filled object serves French too
    origin.take()
    invalidate_url(f"{site}/about", headers={"accept-language": "fr"})
    assert refetch(cache, origin) == {("/about", "en")}


# -- ask 3: a group of URLs --------------------------------------------------------------------

def test_ask3_group_by_tag(cache, origin):
    warm(cache, origin)
    invalidate_tags("news-a")
    assert refetch(cache, origin) == pages(["/news/a"])


def test_ask3_group_by_shared_tag(cache, origin):
    warm(cache, origin)
    result = invalidate_tags("news")
    assert result is not None and result.matched == 10  # 5 news pages x 2 languages
    assert refetch(cache, origin) == pages(PATHS)


def test_ask3_several_tags_in_one_request(cache, origin):
    warm(cache, origin)
    result = invalidate_tags("news-a", "news-b")
    assert result is not None and result.matched == 4
    assert refetch(cache, origin) == pages(["/news/a", "/news/b"])


def test_ask3_group_by_prefix(cache, origin):
    warm(cache, origin)
    invalidate_prefix("/news/")
    assert refetch(cache, origin) == pages(["/news/a", "/news/b"])


def test_ask3_everything(cache, origin):
    warm(cache, origin)
    invalidate_all()
    assert refetch(cache, origin) == set(ALL)


# -- ask 4: the same by path instead of full URL ----------------------------------------------

def test_ask4_path_with_query(cache, origin):
    warm(cache, origin)
    invalidate_path("/news?page=2")
    assert refetch(cache, origin) == pages(["/news?page=2"])


def test_ask4_path_with_query_argument(cache, origin):
    warm(cache, origin)
    invalidate_path("/news", query="page=3")
    assert refetch(cache, origin) == pages(["/news?page=3"])


def test_ask4_path_any_query_for_one_language(cache, origin):
    warm(cache, origin)
    invalidate_path("/news", any_query=True, headers={"accept-language": "fr"})
    assert refetch(cache, origin) == pages(["/news", "/news?page=2", "/news?page=3"], ["fr"])


def test_ask4_path_without_query_is_exact(cache, origin):
    warm(cache, origin)
    invalidate_path("/news")
    assert refetch(cache, origin) == pages(["/news"])


def test_ask4_path_matches_every_host_but_host_restricts(cache, origin, site):
    """The same page reached as 127.0.0.1 and as localhost is two cached objects: a path
    purge takes both, a purge with host= (or a full URL) only that host's."""
    port = site.rsplit(":", 1)[1]
    other = {"Host": f"localhost:{port}"}
    warm(cache, origin, [("/news/a", "en")])
    assert cache.get("/news/a", "en", other).miss
    assert cache.get("/news/a", "en", other).hit
    origin.take()

    invalidate_path("/news/a", host=f"localhost:{port}")
    assert cache.get("/news/a", "en").hit
    assert cache.get("/news/a", "en", other).miss
    assert origin.take() == [("/news/a", "en")]

    invalidate_path("/news/a")
    assert cache.get("/news/a", "en").miss
    assert cache.get("/news/a", "en", other).miss
    assert origin.take() == [("/news/a", "en"), ("/news/a", "en")]


def test_ask4_non_ascii_path(cache, origin, site):
    """Clients send /news/caf%C3%A9 (here a cached redirect); a helper given /news/café must
    name the same page."""
    page = "/news/caf%C3%A9"
    for helper in (lambda: invalidate_path("/news/café"),
                   lambda: invalidate_url(f"{site}/news/café")):
        assert cache.get(page, "en").miss
        assert cache.get(page, "en").hit
        origin.take()
        helper()
        assert cache.get(page, "en").miss
        assert origin.take() == [(page, "en")]
        invalidate_all()


def test_ask4_prefix_on_one_host(cache, origin, site):
    warm(cache, origin)
    invalidate_prefix("/news/", host="somewhere-else.example")
    assert refetch(cache, origin) == set()
    invalidate_prefix("/news/", host=site.split("://", 1)[1])
    assert refetch(cache, origin) == pages(["/news/a", "/news/b"])


@pytest.mark.parametrize("helper, args", [
    (invalidate_path, ("news",)),
    (invalidate_prefix, ("news/",)),
    (invalidate_tags, ("two words",)),
    (invalidate_url, ("ftp://example.com/x",)),
])
def test_invalid_arguments_raise_before_sending(cache, origin, helper, args):
    from vanish_client import SelectorError

    warm(cache, origin, [("/news", "en")])
    with pytest.raises(SelectorError):
        helper(*args)
    assert refetch(cache, origin, [("/news", "en")]) == set()
