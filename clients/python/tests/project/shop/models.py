"""A product whose pages Vanish purges when it is saved or deleted (VanishPurgeMixin)."""

from django.db import models

from vanish_client.django import VanishPurgeMixin


class Product(VanishPurgeMixin, models.Model):
    name = models.CharField(max_length=100)
    price = models.IntegerField(default=0)

    def __str__(self):
        return self.name

    def get_absolute_url(self):
        return f"/products/{self.pk}/"


class Note(models.Model):
    """Not mixed in: registered with register_purge() in apps.py instead."""

    text = models.CharField(max_length=100)

    def get_absolute_url(self):
        return f"/notes/{self.pk}/"
