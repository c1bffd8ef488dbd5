"""When Vanish is down or refuses a purge: logged, never breaking the request, unless
``VANISH['RAISE_ERRORS']``; bounded in time by the timeout and retries."""

from __future__ import annotations

import logging
import time

import pytest
from django.conf import settings
from django.test import Client
from django.test.utils import override_settings

from shop.models import Product
from vanish_client import VanishAPIError, VanishConnectionError
from vanish_client.django import invalidate_path, invalidate_tags


# stopped_vanish (conftest.py): the admin URL of a Vanish that was running and has been
# stopped; its port stays refused for the whole test.


def pointing_at(admin_url, **changes):
    return override_settings(VANISH={**settings.VANISH, "ADMIN_URL": admin_url, **changes})


def test_stopped_vanish_is_logged_not_raised(stopped_vanish, caplog):
    timeout = 30
    with pointing_at(stopped_vanish, RAISE_ERRORS=False, RETRIES=2, BACKOFF=0.01,
                     TIMEOUT=timeout):
        started = time.monotonic()
        with caplog.at_level(logging.ERROR, logger="vanish_client"):
            assert invalidate_tags("news") is None
        elapsed = time.monotonic() - started
    # A refusal is answered at once: three attempts take far less than one timeout (a client
    # waiting out its timeout on a refused port would take 30 s per attempt).
    assert elapsed < timeout / 3, "retries against a refused port must be quick"
    [record] = [r for r in caplog.records if r.name == "vanish_client"]
    assert "tag:news" in record.getMessage()
    assert "cannot reach the Vanish admin API" in record.getMessage()
    assert "after 3 attempts" in record.getMessage()


def test_stopped_vanish_raises_when_configured(stopped_vanish):
    with pointing_at(stopped_vanish, RAISE_ERRORS=True, RETRIES=0):
        with pytest.raises(VanishConnectionError) as info:
            invalidate_path("/news")
    assert info.value.attempts == 1
    assert stopped_vanish.split("//")[1] in str(info.value)


def test_a_write_request_still_succeeds_with_vanish_down(stopped_vanish, site_db, caplog):
    with pointing_at(stopped_vanish, RAISE_ERRORS=False, RETRIES=0):
        product = Product.objects.create(name="old")
        try:
            with caplog.at_level(logging.ERROR, logger="vanish_client"):
                response = Client().post(f"/products/{product.pk}/rename", {"name": "new"})
            assert response.status_code == 200
            product.refresh_from_db()
            assert product.name == "new"
            messages = [r.getMessage() for r in caplog.records if r.name == "vanish_client"]
            assert any(f"/products/{product.pk}/" in m and "cannot reach" in m
                       for m in messages), messages
        finally:
            product.delete()


def test_a_write_request_fails_loudly_when_configured_to_raise(stopped_vanish, site_db):
    with pointing_at(stopped_vanish, RAISE_ERRORS=False, RETRIES=0):
        product = Product.objects.create(name="old")
    try:
        with pointing_at(stopped_vanish, RAISE_ERRORS=True, RETRIES=0):
            with pytest.raises(VanishConnectionError):
                Client().post(f"/products/{product.pk}/rename", {"name": "new"})
    finally:
        with pointing_at(stopped_vanish, RAISE_ERRORS=False, RETRIES=0):
            product.delete()


def test_refused_purge_carries_the_servers_error(start_vanish, caplog):
    """A Vanish with a token answers 401 to a caller without it: raised with the server's
    JSON error, or logged."""
    v = start_vanish(token="s3cret-token")
    with pointing_at(v.admin, RAISE_ERRORS=True):
        with pytest.raises(VanishAPIError) as info:
            invalidate_tags("news")
    assert info.value.status == 401 and info.value.field == "authorization"
    assert "Bearer" in info.value.error
    with pointing_at(v.admin, RAISE_ERRORS=False):
        with caplog.at_level(logging.ERROR, logger="vanish_client"):
            assert invalidate_tags("news") is None
    assert any("answered 401" in r.getMessage() for r in caplog.records)
    with pointing_at(v.admin, TOKEN="s3cret-token"):
        assert invalidate_tags("news").matched == 0


def test_disabled_sends_nothing(stopped_vanish, caplog):
    with pointing_at(stopped_vanish, ENABLED=False, RAISE_ERRORS=True):
        with caplog.at_level(logging.DEBUG, logger="vanish_client"):
            assert invalidate_tags("news") is None
    assert any("disabled" in r.getMessage() for r in caplog.records)
