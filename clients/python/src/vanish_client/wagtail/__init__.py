"""Wagtail integration for Vanish.

* ``vanish_client.wagtail.VanishBackend`` -- a ``wagtail.contrib.frontend_cache`` backend:
  every URL Wagtail purges for a page goes to Vanish in one ``POST /invalidate``, after the
  publishing transaction commits, with the admin token and a timeout.
* ``"vanish_client.wagtail"`` in ``INSTALLED_APPS`` -- also purges, on publish and unpublish,
  the page's tag and its types' list tags, so pages that rendered it (an index listing its
  children, a menu) are purged too. Wagtail hands backends URLs only, never tags: this is
  where tags come in.
"""

from .backend import VanishBackend

__all__ = ["VanishBackend"]
