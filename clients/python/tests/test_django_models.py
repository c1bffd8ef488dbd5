"""Saving or deleting a model instance purges exactly the pages that showed it."""

from __future__ import annotations

import pytest
from django.db import transaction

from shop.models import Note, Product
from vanish_client import Selector
from vanish_client.django import instance_tag, model_tags, selectors_for


@pytest.fixture
def products(cache):
    made = [Product.objects.create(name=f"p{i}", price=i) for i in (1, 2)]
    yield made
    Product.objects.filter(pk__in=[p.pk for p in made]).delete()


def warm(cache, origin, paths):
    for p in paths:
        assert cache.get(p).miss, p
    for p in paths:
        assert cache.get(p).hit, p
    origin.take()


def refetch(cache, origin, paths):
    missed = {p for p in paths if not cache.get(p).hit}
    seen = [p for p, _ in origin.take()]
    assert sorted(seen) == sorted(missed)
    return missed


def test_tags_and_urls_of_an_instance(products, site):
    p1 = products[0]
    assert instance_tag(p1) == f"shop.product-{p1.pk}"
    assert model_tags(Product) == ["shop.product"]
    assert selectors_for(p1) == [
        Selector.url(f"{site}/products/{p1.pk}/").any_query(),
        Selector.tag(f"shop.product-{p1.pk}"),
        Selector.tag("shop.product"),
    ]


def test_saving_purges_its_pages_and_lists_only(cache, origin, products):
    p1, p2 = products
    paths = ["/products/", f"/products/{p1.pk}/", f"/products/{p1.pk}/?ref=mail",
             f"/plain/{p1.pk}/", f"/products/{p2.pk}/", f"/plain/{p2.pk}/", "/news/a"]
    warm(cache, origin, paths)
    p1.price = 99
    p1.save()
    assert refetch(cache, origin, paths) == {
        "/products/", f"/products/{p1.pk}/", f"/products/{p1.pk}/?ref=mail", f"/plain/{p1.pk}/"}
    assert "99" in cache.get(f"/products/{p1.pk}/").body


def test_creating_purges_the_lists(cache, origin, products):
    p1 = products[0]
    paths = ["/products/", f"/products/{p1.pk}/"]
    warm(cache, origin, paths)
    p3 = Product.objects.create(name="p3")
    try:
        assert refetch(cache, origin, paths) == {"/products/"}
        assert "p3" in cache.get("/products/").body
    finally:
        p3.delete()


def test_deleting_purges_its_pages(cache, origin, products):
    p1, p2 = products
    paths = ["/products/", f"/products/{p1.pk}/", f"/products/{p2.pk}/"]
    warm(cache, origin, paths)
    pk = p2.pk
    p2.delete()
    assert refetch(cache, origin, paths) == {"/products/", f"/products/{pk}/"}
    assert cache.get(f"/products/{pk}/").status == 404


def test_rolled_back_save_purges_nothing(cache, origin, products):
    p1 = products[0]
    paths = ["/products/", f"/products/{p1.pk}/"]
    warm(cache, origin, paths)
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            p1.name = "never"
            p1.save()
            raise RuntimeError("roll back")
    assert refetch(cache, origin, paths) == set()


def test_registered_model_without_the_mixin(cache, origin, site_db):
    note = Note.objects.create(text="first")
    other = Note.objects.create(text="other")
    try:
        paths = [f"/notes/{note.pk}/", f"/notes/{other.pk}/"]
        warm(cache, origin, paths)
        note.text = "second"
        note.save()
        assert refetch(cache, origin, paths) == {f"/notes/{note.pk}/"}
        assert "second" in cache.get(f"/notes/{note.pk}/").body
    finally:
        Note.objects.filter(pk__in=[note.pk, other.pk]).delete()


def test_queryset_update_sends_no_signal_and_purges_nothing(cache, origin, products):
    """Documented limit: QuerySet.update() bypasses save(); call the helpers yourself."""
    p1 = products[0]
    warm(cache, origin, [f"/products/{p1.pk}/"])
    Product.objects.filter(pk=p1.pk).update(price=5)
    assert refetch(cache, origin, [f"/products/{p1.pk}/"]) == set()


def test_a_broken_url_is_logged_and_the_save_succeeds(cache, monkeypatch, caplog):
    import logging

    from django.conf import settings
    from django.test.utils import override_settings

    from vanish_client.django import register_purge
    from vanish_client.django import models as vanish_models

    monkeypatch.setattr(vanish_models, "_registry", dict(vanish_models._registry))
    register_purge(Note, urls=lambda note: ["ftp://not-http/"])
    with override_settings(VANISH={**settings.VANISH, "RAISE_ERRORS": False}):
        with caplog.at_level(logging.ERROR, logger="vanish_client"):
            note = Note.objects.create(text="saved anyway")
    assert Note.objects.filter(pk=note.pk).exists()
    [record] = [r for r in caplog.records if r.name == "vanish_client"]
    assert "cannot purge" in record.getMessage() and "ftp://not-http/" in record.getMessage()
    with override_settings(VANISH={**settings.VANISH, "RAISE_ERRORS": True}):
        with pytest.raises(ValueError):
            note.save()
    with override_settings(VANISH={**settings.VANISH, "RAISE_ERRORS": False}):
        note.delete()
