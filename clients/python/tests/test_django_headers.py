"""``@cache_tags`` and ``VanishMiddleware``: the Cache-Control and tag headers they write.

Most checks run the test project in this process with Django's test client; the last ones go
through the real Vanish to show the headers do what they are for.
"""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.test.utils import override_settings

from shop.models import Product
from vanish_client.django import get_settings


def vanish_settings(**changes):
    return override_settings(VANISH={**settings.VANISH, **changes})


@pytest.fixture
def client(site_db):
    return Client()


@pytest.fixture
def product(cache):
    p = Product.objects.create(name="lamp", price=30)
    yield p
    p.delete()


def tags(response, header="Surrogate-Key", sep=" "):
    return response.headers.get(header, "").split(sep) if response.has_header(header) else []


def assert_shareable(response, max_age, swr=None):
    expected = f"public, s-maxage={max_age}" + (f", stale-while-revalidate={swr}" if swr else "")
    assert response.headers["Cache-Control"] == expected
    assert not response.cookies, "a cacheable page must not set cookies"
    assert "cookie" not in response.headers.get("Vary", "").lower()


def test_decorator_with_string_and_callable_tags(client):
    r = client.get("/news/a", HTTP_ACCEPT_LANGUAGE="fr")
    assert r.status_code == 200
    assert_shareable(r, 600)  # VANISH['MAX_AGE']
    assert tags(r) == ["news", "news-a"]
    assert r.headers["Vary"] == "Accept-Language"


def test_template_response_tags_its_instance(client, product):
    r = client.get(f"/products/{product.pk}/")
    assert_shareable(r, 120)
    assert tags(r) == [f"shop.product-{product.pk}"]


def test_template_response_tags_its_queryset(client, product):
    r = client.get("/products/")
    assert_shareable(r, 120, swr=30)
    assert tags(r) == ["shop.product"]


def test_template_tag_tags_a_render_page(client, product):
    r = client.get(f"/plain/{product.pk}/")
    assert_shareable(r, 600)
    assert tags(r) == [f"shop.product-{product.pk}", "plain"]


def test_middleware_makes_undecorated_pages_cacheable_with_view_tags(client):
    from shop.models import Note

    note = Note.objects.create(text="n")
    try:
        r = client.get(f"/notes/{note.pk}/")
        assert_shareable(r, 600)
        assert tags(r) == [f"note-{note.pk}"]
    finally:
        note.delete()


def test_middleware_global_stale_while_revalidate(client):
    with vanish_settings(STALE_WHILE_REVALIDATE=45):
        assert_shareable(client.get("/about"), 600, swr=45)


def test_without_cache_pages_only_decorated_views_are_cacheable(client):
    with vanish_settings(CACHE_PAGES=False):
        assert not client.get("/about").has_header("Cache-Control")
        assert_shareable(client.get("/news"), 600)


def test_page_that_sets_a_cookie_is_not_made_public(client):
    r = client.get("/cookie")
    assert r.cookies["flavour"].value == "oat"
    assert "public" not in r.headers.get("Cache-Control", "")


def test_session_write_makes_the_page_private(client):
    r = client.get("/session")
    assert settings.SESSION_COOKIE_NAME in r.cookies
    assert "public" not in r.headers.get("Cache-Control", "")


def test_view_cache_control_wins(client):
    r = client.get("/private")
    assert "public" not in r.headers["Cache-Control"]
    assert "no-cache" in r.headers["Cache-Control"]
    assert tags(r) == ["private"]


def test_async_view(client):
    r = client.get("/async")
    assert_shareable(r, 60)
    assert tags(r) == ["async-tag"]


def test_middleware_in_an_async_stack(site_db):
    import asyncio

    from django.http import HttpResponse
    from django.test import RequestFactory

    from vanish_client.django import VanishMiddleware, add_tags

    async def view(request):
        add_tags(request, "from-async")
        return HttpResponse("ok")

    middleware = VanishMiddleware(view)
    assert asyncio.iscoroutinefunction(middleware)
    response = asyncio.run(middleware(RequestFactory().get("/about")))
    assert_shareable(response, 600)
    assert tags(response) == ["from-async"]


def test_excluded_paths_and_signed_in_visitors_are_not_cached_site_wide(client):
    with vanish_settings(EXCLUDE_PATHS=["/ab"]):
        assert not client.get("/about").has_header("Cache-Control")
    from django.contrib.sessions.backends.db import SessionStore

    session = SessionStore()
    session["user"] = "someone"
    session.save()
    client.cookies[settings.SESSION_COOKIE_NAME] = session.session_key
    assert not client.get("/about").has_header("Cache-Control")
    # A decorated view opted in explicitly and stays cacheable.
    assert_shareable(client.get("/news"), 600)


def test_post_is_never_made_cacheable(client):
    assert "public" not in client.post("/about").headers.get("Cache-Control", "")


def test_other_tag_header(client):
    with vanish_settings(TAG_HEADER="Cache-Tag"):
        r = client.get("/news/b")
        assert tags(r, "Cache-Tag", ",") == ["news", "news-b"]
        assert not r.has_header("Surrogate-Key")


def test_misconfiguration_is_reported_with_the_key():
    with vanish_settings(MAX_AEG=5):
        with pytest.raises(ImproperlyConfigured, match="MAX_AEG"):
            get_settings()
    with vanish_settings(TAG_HEADER="X-Tags"):
        with pytest.raises(ImproperlyConfigured, match="TAG_HEADER"):
            get_settings()


# -- through Vanish -------------------------------------------------------------------------

def test_vanish_strips_the_tag_header_and_stores_with_the_tags(cache, origin, site):
    from vanish_client import VanishClient

    r = cache.get("/news/a", "en")
    assert r.miss and "surrogate-key" not in r.headers
    assert r.headers["cache-control"] == "public, s-maxage=600"
    explained = VanishClient(cache.admin).explain(f"{site}/news/a", {"Accept-Language": "en"})
    assert explained.cached and explained.selected is not None
    assert sorted(explained.selected.tags) == ["news", "news-a"]
    assert explained.selected.vary == {"accept-language": "en"}


def test_pages_that_must_not_be_shared_are_not_stored(cache, origin):
    for path in ("/cookie", "/session", "/private"):
        assert not cache.get(path).hit
        assert not cache.get(path).hit, f"{path} was served from the cache"
    assert len(origin.take()) == 6
