from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def create_cache_table(using: str = "default", **_kwargs) -> None:
    """The database cache's table (the embedded default's shared cache, settings.CACHES) is no
    model, so no migration makes it: ``migrate`` creates it after every run, when missing."""
    from django.core.management import call_command

    call_command("createcachetable", database=using, verbosity=0)


class CoreConfig(AppConfig):
    name = "mamori.core"
    label = "core"
    verbose_name = _("Core")

    def ready(self) -> None:
        post_migrate.connect(create_cache_table, sender=self)
