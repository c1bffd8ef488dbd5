"""Fixtures: the Django test project configured in this process (sharing its SQLite file with
the server), Django's runserver serving it, and the real vanish binary in front.

Ports are picked by the kernel when each server binds (see harness.py), so the addresses are
known only once the servers run: the ``servers`` fixture then points this process's settings
(and the environment, for subprocesses) at them. Every process is stopped at the end, also
when a start fails or the run is interrupted (Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "project"))
sys.path.insert(0, str(HERE))

from harness import (  # noqa: E402
    REQUEST_TIMEOUT, Origin, RedisServer, Vanish, listening_socket, pin_binary,
    refuse_connections, stop, tail, unique_log,
)

_state: dict = {}


def _terminated(signum, frame):
    # Like Ctrl-C: pytest stops and runs every fixture's teardown, stopping the servers.
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    """Picks a scratch folder, then configures Django for this process."""
    tmp = Path(tempfile.mkdtemp(prefix="vanish-client-tests-"))
    _state["tmp"] = tmp
    env = {
        "VANISH_TEST_DB": str(tmp / "db.sqlite3"),
        "VANISH_TEST_MEDIA": str(tmp / "media"),
        "DJANGO_SETTINGS_MODULE": "testsite.settings",
    }
    os.environ.update(env)
    _state["env"] = env
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        _state["sigterm"] = signal.signal(signal.SIGTERM, _terminated)
    import django

    django.setup()


def pytest_unconfigure(config: pytest.Config) -> None:
    if "sigterm" in _state:
        signal.signal(signal.SIGTERM, _state.pop("sigterm"))
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
def vanish_bin(scratch: Path) -> Path:
    """The vanish binary every start of this run uses (pinned: see harness.pin_binary)."""
    return pin_binary(scratch)


@pytest.fixture(scope="session")
def migrated() -> None:
    """The test database, migrated (before any server reads it)."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


@dataclass
class Servers:
    origin: Origin
    vanish: Vanish


@pytest.fixture(scope="session")
def servers(migrated, scratch: Path, vanish_bin: Path) -> Iterator[Servers]:
    """Django's socket, then Vanish in front of it, then Django on that socket with the
    settings naming Vanish; this process's settings are pointed at the same addresses."""
    from django.test.utils import override_settings

    sock = listening_socket()
    try:
        host, port = sock.getsockname()[:2]
        v = Vanish.start(vanish_bin, f"http://{host}:{port}", scratch / "vanish.log")
        try:
            urls = {"VANISH_TEST_ADMIN_URL": v.admin, "VANISH_TEST_SITE": v.proxy}
            o = Origin.start(sock, {**_state["env"], **urls}, scratch / "django.log")
        except BaseException:
            v.stop()
            raise
    finally:
        sock.close()  # the Django process has its own copy
    try:
        os.environ.update(urls)  # for subprocesses (manage.py in test_management_command)
        from django.conf import settings

        here = override_settings(
            VANISH={**settings.VANISH, "ADMIN_URL": v.admin, "SITE": v.proxy},
            WAGTAILADMIN_BASE_URL=v.proxy)
        here.enable()
        try:
            yield Servers(o, v)
        finally:
            here.disable()
    finally:
        v.stop()
        stop(o.proc)


@pytest.fixture(scope="session")
def site_db(servers: Servers) -> dict:
    """Migrated database with the Wagtail site (home page and two articles) on Vanish's port."""
    from site_data import build_site

    return build_site(int(servers.vanish.proxy.rsplit(":", 1)[1]))


@pytest.fixture(scope="session")
def origin(servers: Servers, site_db: dict) -> Origin:
    """The Django test project, served by runserver."""
    return servers.origin


@pytest.fixture(scope="session")
def vanish(servers: Servers, site_db: dict) -> Vanish:
    """The vanish binary in front of Django, at the addresses the settings name."""
    return servers.vanish


@pytest.fixture
def cache(vanish: Vanish, origin: Origin) -> Vanish:
    """The shared Vanish, emptied, with Django's request log cleared."""
    from vanish_client import Selector, VanishClient

    for proc, what in ((vanish.proc, "vanish"), (origin.proc, "Django runserver")):
        if proc.poll() is not None:
            log = vanish.log if proc is vanish.proc else origin.log
            pytest.fail(f"{what} exited with {proc.returncode} during the run:\n{tail(log)}")
    VanishClient(vanish.admin, timeout=REQUEST_TIMEOUT).purge(Selector.all())
    origin.take()
    return vanish


@pytest.fixture
def start_vanish(origin: Origin, scratch: Path, vanish_bin: Path) -> Iterator:
    """Starts extra Vanish instances (e.g. with a token); all stopped after the test."""
    started = []

    def start(**kwargs) -> Vanish:
        v = Vanish.start(vanish_bin, origin.url, unique_log(scratch, "vanish-extra"), **kwargs)
        started.append(v)
        return v

    try:
        yield start
    finally:
        for v in started:
            v.stop()


@pytest.fixture
def stopped_vanish(start_vanish) -> Iterator[str]:
    """The admin URL of a Vanish that was running and has been stopped.

    Its port is kept bound (not listening) until the test ends, so connections to it are
    refused: no other process can start listening there in the meantime."""
    taken = None
    for _ in range(5):
        v = start_vanish()
        v.stop()
        try:
            holder = refuse_connections(v.admin)
        except OSError as e:  # something else listens there already: take another
            taken = e
            continue
        with holder:
            yield v.admin
        return
    pytest.fail(f"could not keep a stopped Vanish's port refused: {taken}")


@pytest.fixture
def site(servers: Servers) -> str:
    """The public site (Vanish's proxy address), as VANISH['SITE'] names it."""
    return servers.vanish.proxy


@pytest.fixture(scope="session")
def redis_server(scratch: Path) -> Iterator[RedisServer]:
    """A real redis-server for the run (embedded mode's shared store)."""
    server = RedisServer.start(unique_log(scratch, "redis"))
    try:
        yield server
    finally:
        server.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    """Embedded-mode tests need the engine extension (the vanish wheel). They are skipped
    without it, unless VANISH_TEST_EMBEDDED=1 (run-tests.sh sets it when it installed the
    wheel): then a missing extension fails them instead of hiding them."""
    from vanish_client.django import embedded

    if embedded.available() or os.environ.get("VANISH_TEST_EMBEDDED") == "1":
        return
    skip = pytest.mark.skip(reason="the engine extension is not installed (build the wheel: "
                                   "scripts/wheel.sh; run-tests.sh --wheel)")
    for item in items:
        if "embedded" in item.keywords:
            item.add_marker(skip)
