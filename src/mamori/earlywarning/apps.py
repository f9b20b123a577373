from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EarlyWarningConfig(AppConfig):
    name = "mamori.earlywarning"
    label = "earlywarning"
    verbose_name = _("Early warning")

    def ready(self) -> None:
        from mamori.earlywarning.tasks import on_fleet_rematched
        from mamori.verification.signals import fleet_rematched

        # Once a re-match has patched the hosts' findings of an import's advisories, the
        # KEV-listed and overdue ones become software alerts.
        fleet_rematched.connect(
            on_fleet_rematched, dispatch_uid="earlywarning.software_alerts_on_rematch"
        )
