"""``"vanish_client.wagtail"`` in ``INSTALLED_APPS``: purge a page's tags on publish/unpublish."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.core.exceptions import ImproperlyConfigured

from ..django.conf import get_settings
from ..django.dispatch import logger, purge
from ..django.tags import model_tags, tags_for
from ..errors import VanishAPIError, VanishConnectionError
from ..selectors import Selector


def purge_page_tags(sender: Any, instance: Any, **kwargs: Any) -> None:
    """Purges the page's own tag and the list tags of its type and of ``Page``: every page
    that rendered it, or a list it belongs to."""
    try:
        names = tags_for(instance) + model_tags(type(instance))
        purge(*(Selector.tag(t) for t in dict.fromkeys(names)))
    except (VanishAPIError, VanishConnectionError):
        raise  # already logged by purge(), which raises them only under RAISE_ERRORS
    except (ValueError, ImproperlyConfigured) as e:
        logger.error("vanish: cannot purge the tags of page %r: %s", instance, e)
        if get_settings().raise_errors:
            raise


class VanishWagtailConfig(AppConfig):
    """Connects :func:`purge_page_tags` to Wagtail's ``page_published`` and
    ``page_unpublished`` signals."""

    name = "vanish_client.wagtail"
    label = "vanish_wagtail"
    verbose_name = "Vanish for Wagtail"

    def ready(self) -> None:
        from wagtail.signals import page_published, page_unpublished

        page_published.connect(purge_page_tags, dispatch_uid="vanish_wagtail.published")
        page_unpublished.connect(purge_page_tags, dispatch_uid="vanish_wagtail.unpublished")
