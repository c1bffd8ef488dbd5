"""The built wheel ($VANISH_WHEEL, from scripts/wheel.sh) installed into a fresh virtualenv
whose PATH has no cargo: the `vanish` executable, `vanish serve` in front of the test
project, and embedded mode, all from the wheel alone (nothing imported from this tree)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, Iterator

import pytest

from harness import HERE, PROJECT, Origin, Vanish, listening_socket, stop, unique_log

pytestmark = pytest.mark.wheel
INSTALL_TIMEOUT = 900


@pytest.fixture(scope="module")
def wheel() -> Path:
    path = os.environ.get("VANISH_WHEEL")
    if not path:
        pytest.skip("VANISH_WHEEL is not set (run-tests.sh --wheel builds and sets it)")
    wheel = Path(path)
    assert wheel.is_file(), f"VANISH_WHEEL={path} is not a file"
    return wheel


def no_cargo_path() -> str:
    """PATH without any folder holding cargo (rustup's, ~/.cargo/bin, /usr/bin if needed)."""
    keep = [d for d in os.environ.get("PATH", "").split(os.pathsep)
            if d and not os.path.exists(os.path.join(d, "cargo"))]
    return os.pathsep.join(keep)


@pytest.fixture(scope="module")
def venv(wheel: Path, scratch: Path) -> Iterator[Dict[str, str]]:
    """A fresh virtualenv with the wheel (and the pinned test project's dependencies)."""
    root = scratch / "wheel-venv"
    subprocess.run([sys.executable, "-m", "venv", str(root)], check=True,
                   timeout=INSTALL_TIMEOUT)
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "VANISH_BIN")}
    env["PATH"] = os.pathsep.join([str(root / "bin"), no_cargo_path()])
    assert shutil.which("cargo", path=env["PATH"]) is None
    pip = [str(root / "bin" / "python"), "-m", "pip", "install", "-q",
           "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(HERE.parent / "requirements-test.txt"), str(wheel)],
                   check=True, env=env, timeout=INSTALL_TIMEOUT, cwd=scratch)
    yield {"python": str(root / "bin" / "python"), "vanish": str(root / "bin" / "vanish"),
           "env": env, "root": str(root)}


def test_the_vanish_executable_is_on_path(venv):
    found = shutil.which("vanish", path=venv["env"]["PATH"])
    assert found == venv["vanish"]
    done = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=60,
                          env=venv["env"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("vanish ")


def test_the_package_and_extension_come_from_the_wheel(venv, scratch):
    code = ("import vanish_client, vanish_client._engine as e; "
            "print(vanish_client.__file__); print(e.__file__)")
    done = subprocess.run([venv["python"], "-c", code], capture_output=True, text=True,
                          timeout=60, env=venv["env"], cwd=scratch)
    assert done.returncode == 0, done.stderr
    for line in done.stdout.split():
        assert line.startswith(venv["root"]), line
    assert ".abi3.so" in done.stdout


def test_vanish_serve_in_front_of_the_test_project(venv, scratch, migrated):
    sock = listening_socket()
    vanish = None
    origin = None
    try:
        host, port = sock.getsockname()[:2]
        vanish = Vanish.start(Path(venv["vanish"]), f"http://{host}:{port}",
                              unique_log(scratch, "wheel-vanish"))
        env = {**venv["env"], "VANISH_TEST_ADMIN_URL": vanish.admin,
               "VANISH_TEST_SITE": vanish.proxy, "VANISH_TEST_DB": str(scratch / "db.sqlite3"),
               "DJANGO_SETTINGS_MODULE": "testsite.settings"}
        origin = Origin.start(sock, env, unique_log(scratch, "wheel-django"),
                              python=venv["python"])
        assert vanish.get("/news/a").miss
        assert vanish.get("/news/a").hit
        done = subprocess.run([venv["vanish"], "purge", "--admin", vanish.admin, "--tag",
                               "news-a"], capture_output=True, text=True, timeout=60,
                              env=venv["env"])
        assert done.returncode == 0, done.stderr
        assert vanish.get("/news/a").miss
    finally:
        sock.close()
        if vanish is not None:
            vanish.stop()
        if origin is not None:
            stop(origin.proc)


EMBEDDED_SCRIPT = textwrap.dedent('''
    import json, os, sys
    sys.path.insert(0, {project!r})
    os.environ["DJANGO_SETTINGS_MODULE"] = "testsite.settings"
    import django
    from django.conf import settings
    django.setup()
    from django.test import Client
    from django.test.utils import override_settings
    from vanish_client.django import invalidate_tags

    vanish = {{"MODE": "embedded", "STORE": "memory", "CAPACITY": "8MiB", "RAISE_ERRORS": True,
              "SITE": "http://127.0.0.1:8000"}}
    with override_settings(VANISH=vanish, MIDDLEWARE=settings.EMBEDDED_MIDDLEWARE):
        c = Client(HTTP_HOST="127.0.0.1:8000")
        out = [c.get("/news/a").get("Cache-Status"), c.get("/news/a").get("Cache-Status")]
        out.append(invalidate_tags("news-a").matched)
        out.append(c.get("/news/a").get("Cache-Status"))
    print(json.dumps(out))
''')


def test_embedded_mode_from_the_wheel(venv, scratch):
    script = scratch / "wheel_embedded.py"
    script.write_text(EMBEDDED_SCRIPT.format(project=str(PROJECT)))
    done = subprocess.run([venv["python"], str(script)], capture_output=True, text=True,
                          timeout=120, cwd=scratch,
                          env={**venv["env"], "VANISH_TEST_DB": str(scratch / "db.sqlite3")})
    assert done.returncode == 0, done.stderr[-3000:]
    first, second, matched, after = json.loads(done.stdout.strip().splitlines()[-1])
    assert "fwd=miss" in first and "stored" in first
    assert "hit" in second
    assert matched == 1
    assert "fwd=miss" in after
