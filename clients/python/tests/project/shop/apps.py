from django.apps import AppConfig


class ShopConfig(AppConfig):
    name = "shop"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from vanish_client.django import register_purge

        from .models import Note

        register_purge(Note, tags=lambda note: [f"note-{note.pk}", "notes"])
