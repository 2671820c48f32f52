"""API tokens, stored as the SHA-256 of the key: the database (and every backup or copy of it) holds nothing that
authenticates. A key is 160 random bits, so an unsalted fast hash is enough: nobody can search that space, and the
lookup stays one indexed query (a slow password hash would cost every API call its work factor)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class APIToken(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens",
                             verbose_name=_("user"))
    # The key's first characters, shown so that people can tell their tokens apart; they do not authenticate.
    prefix = models.CharField(_("starts with"), max_length=8)
    digest = models.CharField(_("SHA-256 of the key"), max_length=64, unique=True)
    created = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"
