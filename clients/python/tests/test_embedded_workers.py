"""Embedded mode on one Redis shared by several processes: two gunicorn workers (pre-fork:
the app is imported before the fork, the engine starts in each worker) and a Vanish proxy.

A purge through any of them is acknowledged once durable in Redis; the others' in-process
L1 copies obey it within the L1 lease (500 ms by default, docs/redis.md), so the checks on
*other* processes wait for it with a deadline, and then require that the old page is never
served again."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Iterator

import pytest

from harness import Gunicorn, Vanish, http_get, unique_log, wait_until
from vanish_client import Selector, VanishClient

pytestmark = pytest.mark.embedded
LEASE_DEADLINE = 15.0
"""Far above the L1 lease, for a busy machine."""


@pytest.fixture(scope="module")
def workers(redis_server, scratch: Path, migrated) -> Iterator[Gunicorn]:
    env = {"VANISH_TEST_STORE": redis_server.url, "VANISH_TEST_RAISE": "1",
           "VANISH_TEST_DB": str(scratch / "db.sqlite3")}
    g = Gunicorn.start(sys.executable, env, unique_log(scratch, "gunicorn"), workers=2)
    try:
        yield g
    finally:
        g.stop()


@pytest.fixture(scope="module")
def proxy(workers, redis_server, scratch: Path, vanish_bin: Path) -> Iterator[Vanish]:
    """A Vanish proxy in front of the workers, on the same Redis."""
    config = scratch / "vanish-redis.toml"
    config.write_text(f'[store]\nkind = "redis"\n\n[redis]\nurl = "{redis_server.url}"\n')
    v = Vanish.start(vanish_bin, workers.url, unique_log(scratch, "vanish-redis"),
                     extra=["--config", str(config)])
    try:
        yield v
    finally:
        v.stop()


def served_by(res) -> str:
    return res.headers.get("x-served-by", "?")


def test_two_workers_share_pages_and_see_each_others_purges(workers):
    first = workers.get("/news/a?workers=1")
    assert first.miss, first.cache_status
    pids = set()
    for _ in range(30):  # both workers answer, from the one render in Redis
        res = workers.get("/news/a?workers=1")
        assert res.hit and res.body == first.body, (res.cache_status, res.body)
        pids.add(served_by(res))
        if len(pids) == 2:
            break
    purged = workers.post("/__purge__", {"tag": "news-a"})
    assert purged.status == 200, purged.body
    answer = json.loads(purged.body)
    assert answer["matched"] >= 1

    # The purging worker: at once. Any other worker: within the lease, then never again.
    def other_worker_fresh():
        res = workers.get("/news/a?workers=1")
        return served_by(res) != str(answer["pid"]) and res.body != first.body and res

    seen = wait_until(other_worker_fresh, "the other worker serving a new render",
                      timeout=LEASE_DEADLINE)
    assert seen.status == 200
    for _ in range(10):
        assert workers.get("/news/a?workers=1").body != first.body, "the old page came back"


def test_a_proxy_on_the_same_redis_sees_djangos_purges(workers, proxy):
    path = "/news/b?proxy=1"
    assert proxy.get(path).miss
    cached = proxy.get(path)
    assert cached.hit
    purged = workers.post("/__purge__", {"path": "/news/b"})
    # The proxy passes its Host on: Django's key is the proxy's, one object in Redis for both.
    assert json.loads(purged.body)["matched"] >= 1

    def proxy_fresh():
        res = proxy.get(path)
        return not res.hit and res

    wait_until(proxy_fresh, "the proxy renders the page again", timeout=LEASE_DEADLINE)


def test_django_sees_a_proxys_purges(workers, proxy):
    path = "/news/c?from-proxy=1"
    first = workers.get(path)
    assert first.miss
    assert workers.get(path).hit
    result = VanishClient(proxy.admin, timeout=30).purge(Selector.path("/news/c").any_query())
    assert result.matched >= 1

    def fresh():
        res = workers.get(path)
        return res.body != first.body and res

    wait_until(fresh, "the workers render the page again", timeout=LEASE_DEADLINE)
    for _ in range(10):
        assert workers.get(path).body != first.body


def test_workers_answer_with_the_proxys_stored_copy_headers(workers):
    """Sanity: the workers' answers are the engine's (Cache-Status, Age on hits)."""
    res = workers.get("/about?sanity=1")
    assert res.status == 200 and "vanish" in res.cache_status
    hit = workers.get("/about?sanity=1")
    assert hit.hit and "age" in hit.headers
    assert http_get(workers.url, "/__requests__").status == 200
