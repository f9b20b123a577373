from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PlusConfig(AppConfig):
    name = "mamori.plus"
    label = "plus"
    verbose_name = _("Cyber Essentials Plus")
