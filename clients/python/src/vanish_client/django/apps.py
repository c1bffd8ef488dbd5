"""The Django app: add ``"vanish_client.django"`` to ``INSTALLED_APPS``."""

from django.apps import AppConfig


class VanishConfig(AppConfig):
    """Connects the save/delete purge receivers and provides ``vanish_purge`` and
    ``{% load vanish %}``."""

    name = "vanish_client.django"
    label = "vanish"
    verbose_name = "Vanish page cache"

    def ready(self) -> None:
        from .conf import get_settings
        from .models import connect_signals

        conf = get_settings()  # fail at start-up on a misspelt VANISH key
        if conf.embedded:
            from .embedded import get_cache

            get_cache(conf)  # checks the options and the extension; starts nothing
        connect_signals()
