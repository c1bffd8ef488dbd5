"""Purges wait for the transaction: sent on commit, never after a rollback; batches."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import transaction
from django.test.utils import override_settings

from vanish_client import VanishClient
from vanish_client.django import batch, invalidate_path, invalidate_prefix, invalidate_tags


class Boom(Exception):
    pass


@pytest.fixture
def news_a(cache, origin):
    """/news/a cached in English."""
    assert cache.get("/news/a", "en").miss
    assert cache.get("/news/a", "en").hit
    origin.take()
    return cache


@pytest.fixture
def sends(monkeypatch):
    """Counts the HTTP requests every VanishClient sends."""
    calls = []
    real = VanishClient._send

    def counting(self, prepared):
        calls.append((prepared.method, prepared.path))
        return real(self, prepared)

    monkeypatch.setattr(VanishClient, "_send", counting)
    return calls


def test_purge_inside_atomic_waits_for_the_commit(news_a, origin, site_db):
    with transaction.atomic():
        assert invalidate_tags("news-a") is None  # deferred: no result yet
        assert news_a.get("/news/a", "en").hit, "purged before the commit"
    assert news_a.get("/news/a", "en").miss
    assert origin.take() == [("/news/a", "en")]


def test_rollback_purges_nothing(news_a, origin, site_db):
    with pytest.raises(Boom):
        with transaction.atomic():
            invalidate_tags("news-a")
            raise Boom
    assert news_a.get("/news/a", "en").hit
    assert origin.take() == []


def test_rolled_back_savepoint_drops_only_its_purges(news_a, origin, site_db):
    assert news_a.get("/news/b", "en").miss
    origin.take()
    with transaction.atomic():
        invalidate_tags("news-b")
        try:
            with transaction.atomic():
                invalidate_tags("news-a")
                raise Boom
        except Boom:
            pass
    assert news_a.get("/news/a", "en").hit
    assert news_a.get("/news/b", "en").miss
    assert origin.take() == [("/news/b", "en")]


def test_defer_to_commit_off_sends_at_once(news_a, origin, site_db):
    with override_settings(VANISH={**settings.VANISH, "DEFER_TO_COMMIT": False}):
        with pytest.raises(Boom):
            with transaction.atomic():
                result = invalidate_tags("news-a")
                assert result is not None and result.matched == 1
                raise Boom
    assert news_a.get("/news/a", "en").miss


def test_batch_sends_one_request(news_a, origin, sends):
    for path in ("/news/b", "/news?page=2"):
        assert news_a.get(path, "en").miss
    origin.take()
    with batch() as pending:
        assert invalidate_tags("news-a") is None
        assert invalidate_path("/news", query="page=2") is None
        assert invalidate_prefix("/news/b") is None
        assert sends == []
    assert sends == [("POST", "/invalidate")]
    assert pending.matched == 3
    for path in ("/news/a", "/news/b", "/news?page=2"):
        assert news_a.get(path, "en").miss
    assert len(origin.take()) == 3


def test_batch_inside_a_transaction_waits_for_the_commit(news_a, origin, sends, site_db):
    with transaction.atomic():
        with batch() as pending:
            invalidate_tags("news-a")
            invalidate_tags("news-b")
        assert sends == [] and pending.results == []
        assert news_a.get("/news/a", "en").hit
    assert sends == [("POST", "/invalidate")]
    assert news_a.get("/news/a", "en").miss


def test_batch_that_raises_sends_nothing(news_a, origin, sends):
    with pytest.raises(Boom):
        with batch():
            invalidate_tags("news-a")
            raise Boom
    assert sends == []
    assert news_a.get("/news/a", "en").hit


def test_soft_and_hard_purges_of_a_batch_go_in_separate_requests(news_a, sends):
    with batch() as pending:
        invalidate_tags("news-a", soft=True)
        invalidate_tags("news-b")
    assert len(sends) == 2
    assert sorted(r.mode for r in pending.results) == ["hard", "soft"]
