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

        get_settings()  # fail at start-up on a misspelt VANISH key
        connect_signals()
