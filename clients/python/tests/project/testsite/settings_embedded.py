"""The test project in embedded mode, for servers the tests start (gunicorn workers): pages
cached by Django itself through Vanish's engine on the store ``$VANISH_TEST_STORE``
(``memory`` or a Redis URL); purges also go to a proxy when ``$VANISH_TEST_ADMIN_URL`` is set."""

import os

from .settings import *  # noqa: F401,F403
from .settings import EMBEDDED_MIDDLEWARE, VANISH

MIDDLEWARE = ["testsite.counting.ServedByMiddleware", *EMBEDDED_MIDDLEWARE]
VANISH = {k: v for k, v in VANISH.items() if k not in ("ADMIN_URL", "SITE")}
VANISH.update({
    "MODE": "embedded",
    "STORE": os.environ.get("VANISH_TEST_STORE", "memory"),
    "RAISE_ERRORS": os.environ.get("VANISH_TEST_RAISE", "") == "1",
})
if os.environ.get("VANISH_TEST_ADMIN_URL"):
    VANISH["ADMIN_URL"] = os.environ["VANISH_TEST_ADMIN_URL"]
