"""Fixtures: the Django test project configured in this process (sharing its SQLite file with
the server), ``manage.py runserver`` serving it, and the real vanish binary in front.

Ports are free loopback ports picked at start-up; every process is stopped at the end.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "project"))
sys.path.insert(0, str(HERE))

from harness import Origin, Vanish, free_port, stop, tail  # noqa: E402

_state: dict = {}


def pytest_configure(config: pytest.Config) -> None:
    """Picks ports and a scratch folder, then configures Django for this process."""
    tmp = Path(tempfile.mkdtemp(prefix="vanish-client-tests-"))
    ports = set()
    while len(ports) < 3:
        ports.add(free_port())
    proxy_port, admin_port, django_port = sorted(ports)
    _state.update(tmp=tmp, proxy_port=proxy_port, admin_port=admin_port,
                  django_port=django_port)
    env = {
        "VANISH_TEST_DB": str(tmp / "db.sqlite3"),
        "VANISH_TEST_MEDIA": str(tmp / "media"),
        "VANISH_TEST_ADMIN_URL": f"http://127.0.0.1:{admin_port}",
        "VANISH_TEST_SITE": f"http://127.0.0.1:{proxy_port}",
        "DJANGO_SETTINGS_MODULE": "testsite.settings",
    }
    os.environ.update(env)
    _state["env"] = env
    import django

    django.setup()


def pytest_unconfigure(config: pytest.Config) -> None:
    tmp = _state.get("tmp")
    if tmp and os.environ.get("VANISH_TEST_KEEP"):
        print(f"\nvanish-client tests: logs and database kept in {tmp}")
    elif tmp:
        shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def scratch() -> Path:
    """A folder for logs and databases, removed at the end."""
    return _state["tmp"]


@pytest.fixture(scope="session")
def site_db() -> dict:
    """Migrated database with the Wagtail site (home page and two articles)."""
    from django.core.management import call_command

    from site_data import build_site

    call_command("migrate", verbosity=0, interactive=False)
    return build_site(_state["proxy_port"])


@pytest.fixture(scope="session")
def origin(site_db: dict, scratch: Path) -> Iterator[Origin]:
    """The Django test project, served by runserver."""
    o = Origin.start(_state["django_port"], _state["env"], scratch / "django.log")
    try:
        yield o
    finally:
        stop(o.proc)


@pytest.fixture(scope="session")
def vanish(origin: Origin, scratch: Path) -> Iterator[Vanish]:
    """The vanish binary in front of Django, on the ports the settings name."""
    v = Vanish.start(origin.url, scratch / "vanish.log", _state["proxy_port"],
                     _state["admin_port"])
    try:
        yield v
    finally:
        v.stop()


@pytest.fixture
def cache(vanish: Vanish, origin: Origin) -> Vanish:
    """The shared Vanish, emptied, with Django's request log cleared."""
    from vanish_client import Selector, VanishClient

    for proc, what in ((vanish.proc, "vanish"), (origin.proc, "Django runserver")):
        if proc.poll() is not None:
            log = vanish.log if proc is vanish.proc else origin.log
            pytest.fail(f"{what} exited with {proc.returncode} during the run:\n{tail(log)}")
    VanishClient(vanish.admin).purge(Selector.all())
    origin.take()
    return vanish


@pytest.fixture
def start_vanish(origin: Origin, scratch: Path) -> Iterator:
    """Starts extra Vanish instances (e.g. with a token); all stopped after the test."""
    started = []

    def start(**kwargs) -> Vanish:
        v = Vanish.start(origin.url, scratch / f"vanish-extra-{len(started)}.log", **kwargs)
        started.append(v)
        return v

    try:
        yield start
    finally:
        for v in started:
            v.stop()


@pytest.fixture
def site() -> str:
    """The public site (Vanish's proxy address), as VANISH['SITE'] names it."""
    return _state["env"]["VANISH_TEST_SITE"]
