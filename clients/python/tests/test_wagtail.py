"""Wagtail: publishing a page purges it from Vanish, through our backend (one request, after
the commit, with tags for the pages listing it) and through Wagtail's stock HTTPBackend."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.test import Client
from django.test.utils import override_settings
from wagtail.contrib.frontend_cache.backends import HTTPBackend
from wagtail.contrib.frontend_cache.utils import PurgeBatch

from pages.models import ArticlePage
from vanish_client import VanishAPIError, VanishClient
from vanish_client.wagtail import VanishBackend

PAGES = ["/", "/article-1/", "/article-2/"]


def warm(cache, origin, paths=PAGES):
    for p in paths:
        assert cache.get(p).miss, p
    for p in paths:
        assert cache.get(p).hit, p
    origin.take()


def refetch(cache, origin, paths=PAGES):
    missed = {p for p in paths if not cache.get(p).hit}
    assert sorted(p for p, _ in origin.take()) == sorted(missed)
    return missed


def publish(pk: int, body: str) -> ArticlePage:
    page = ArticlePage.objects.get(pk=pk)
    page.body = body
    page.save_revision().publish()
    return page


@pytest.fixture
def articles(site_db, cache):
    return site_db["articles"]


@pytest.fixture
def sends(monkeypatch):
    calls = []
    real = VanishClient._send

    def counting(self, prepared):
        calls.append((prepared.method, prepared.path, prepared.body))
        return real(self, prepared)

    monkeypatch.setattr(VanishClient, "_send", counting)
    return calls


def test_publishing_purges_the_page_and_the_pages_listing_it(cache, origin, articles):
    warm(cache, origin)
    publish(articles[0], "second version")
    # The article by its URL (the backend), the home page by tag: it rendered the list of
    # articles. The other article is untouched.
    assert refetch(cache, origin) == {"/", "/article-1/"}
    assert "second version" in cache.get("/article-1/").body


def test_unpublishing_purges_too(cache, origin, articles):
    warm(cache, origin)
    ArticlePage.objects.get(pk=articles[1]).unpublish()
    try:
        assert refetch(cache, origin) == {"/", "/article-2/"}
        assert cache.get("/article-2/").status == 404
        assert "Article 2" not in cache.get("/").body
    finally:
        ArticlePage.objects.get(pk=articles[1]).save_revision().publish()


def test_purge_waits_for_the_outer_transaction(cache, origin, articles):
    warm(cache, origin)
    with transaction.atomic():
        publish(articles[0], "third version")
        assert cache.get("/article-1/").hit, "purged before the commit"
        origin.take()
    assert refetch(cache, origin) == {"/", "/article-1/"}


def test_backend_purges_a_batch_in_one_request(cache, origin, articles, site, sends):
    warm(cache, origin)
    batch = PurgeBatch([f"{site}/article-1/", f"{site}/article-2/?utm=x"])
    batch.purge(backend_settings={"v": {"BACKEND": "vanish_client.wagtail.VanishBackend",
                                        "ADMIN_URL": cache.admin}})
    assert [(m, p) for m, p, _ in sends] == [("POST", "/invalidate")]
    assert refetch(cache, origin) == {"/article-1/"}  # ?utm=x was never cached


def test_backend_any_query_purges_query_variants(cache, origin, articles, site):
    warm(cache, origin, ["/article-1/", "/article-1/?ref=mail"])
    VanishBackend({"ADMIN_URL": cache.admin}).purge(f"{site}/article-1/")
    assert refetch(cache, origin, ["/article-1/", "/article-1/?ref=mail"]) == {
        "/article-1/", "/article-1/?ref=mail"}
    warm(cache, origin, ["/article-2/", "/article-2/?ref=mail"])
    VanishBackend({"ADMIN_URL": cache.admin, "ANY_QUERY": False}).purge(f"{site}/article-2/")
    assert refetch(cache, origin, ["/article-2/", "/article-2/?ref=mail"]) == {"/article-2/"}


def test_backend_token_and_timeout(start_vanish, site):
    v = start_vanish(token="s3cret-token")
    # Not VANISH['TIMEOUT'] (30 in the test settings), and ample for the purge it then sends.
    good = VanishBackend({"ADMIN_URL": v.admin, "TOKEN": "s3cret-token", "TIMEOUT": 25})
    assert good.client.config.timeout == 25.0
    good.purge(f"{site}/article-1/")  # RAISE_ERRORS is on in the test settings
    with pytest.raises(VanishAPIError) as info:
        VanishBackend({"ADMIN_URL": v.admin}).purge(f"{site}/article-1/")
    assert info.value.status == 401


def test_backend_rejects_unknown_options():
    with pytest.raises(ImproperlyConfigured, match="ADMIN_ULR"):
        VanishBackend({"ADMIN_ULR": "http://127.0.0.1:8081"})


def test_publishing_in_the_wagtail_admin(cache, origin, articles):
    user = get_user_model().objects.filter(username="editor").first() or \
        get_user_model().objects.create_superuser("editor", "editor@example.com", "pw")
    client = Client()
    client.force_login(user)
    warm(cache, origin)
    page = ArticlePage.objects.get(pk=articles[1])
    response = client.post(f"/admin/pages/{page.pk}/edit/", {
        "title": page.title, "slug": page.slug, "body": "edited in the admin",
        "action-publish": "action-publish",
    })
    assert response.status_code == 302, response.content[:2000]
    assert refetch(cache, origin) == {"/", "/article-2/"}
    assert "edited in the admin" in cache.get("/article-2/").body


# -- Wagtail's stock HTTPBackend -------------------------------------------------------------

def stock(location):
    return {"stock": {"BACKEND": "wagtail.contrib.frontend_cache.backends.HTTPBackend",
                      "LOCATION": location}}


def test_stock_http_backend_works_through_the_loopback_allow_list(cache, origin, articles,
                                                                  caplog):
    # Our own tag purging is turned off, to see what the stock backend alone does.
    with override_settings(WAGTAILFRONTENDCACHE=stock(cache.admin),
                           VANISH={**settings.VANISH, "ENABLED": False}):
        warm(cache, origin)
        with caplog.at_level(logging.INFO, logger="wagtail.frontendcache"):
            publish(articles[1], "published through the stock backend")
            HTTPBackend({"LOCATION": cache.admin}).purge("http://127.0.0.1:1/not-cached")
        assert refetch(cache, origin) == {"/article-2/"}  # its URL only: no tags
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], "Vanish must answer 200, even when nothing matched"
    assert any("Purging URL" in r.getMessage() for r in caplog.records)


def test_stock_http_backend_cannot_send_a_token(start_vanish, site, caplog):
    """It sends no credentials: against a Vanish that wants a token it logs the 401."""
    v = start_vanish(token="s3cret-token")
    with caplog.at_level(logging.ERROR, logger="wagtail.frontendcache"):
        HTTPBackend({"LOCATION": v.admin}).purge(f"{site}/article-1/")
    [record] = [r for r in caplog.records if r.name == "wagtail.frontendcache"]
    assert "HTTPError: 401" in record.getMessage()


# -- Sites on another host or port than clients use ---------------------------------------

@pytest.fixture
def default_site_on_port_80(site_db):
    """Wagtail's default: the site is localhost:80, while clients (and Vanish's keys) use
    127.0.0.1:<proxy port>."""
    from wagtail.models import Site

    site = Site.objects.get(is_default_site=True)
    old = (site.hostname, site.port)
    site.hostname, site.port = "localhost", 80
    site.save()
    try:
        yield site
    finally:
        site.hostname, site.port = old
        site.save()


def test_a_site_on_another_port_is_purged_by_path(cache, origin, articles,
                                                  default_site_on_port_80):
    warm(cache, origin)
    page = ArticlePage.objects.get(pk=articles[0])
    assert page.full_url.startswith("http://localhost/")
    publish(articles[0], "published while the site says port 80")
    assert refetch(cache, origin) == {"/", "/article-1/"}


def test_hosts_maps_a_site_to_the_hosts_clients_use(cache, origin, articles, site):
    warm(cache, origin)
    backend = VanishBackend({"ADMIN_URL": cache.admin,
                             "HOSTS": {"localhost": [site.split("://", 1)[1]]}})
    assert [s.to_json()["type"] for s in backend.selectors(["http://localhost/article-2/"])] \
        == ["url"]
    backend.purge("http://localhost/article-2/")
    assert refetch(cache, origin) == {"/article-2/"}
    backend.purge("http://elsewhere.example/article-1/")  # not mapped: by path
    assert refetch(cache, origin) == {"/article-1/"}


def test_a_purge_matching_nothing_logs_its_selector(cache, origin, articles, caplog):
    warm(cache, origin)
    backend = VanishBackend({"ADMIN_URL": cache.admin, "MATCH": "url"})
    with caplog.at_level(logging.DEBUG, logger="vanish_client"):
        backend.purge("http://localhost/article-2/")
    assert refetch(cache, origin) == set()
    [line] = [r.getMessage() for r in caplog.records if "matched nothing" in r.getMessage()]
    assert '"url": "http://localhost/article-2/"' in line
