from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class EarlyWarningConfig(AppConfig):
    name = "mamori.earlywarning"
    label = "earlywarning"
    verbose_name = _("Early warning")

    def ready(self) -> None:
        from mamori.earlywarning.tasks import on_fleet_rematched, on_host_evaluated
        from mamori.verification.signals import fleet_rematched, host_evaluated

        # Once a re-match has patched the hosts' findings of an import's advisories, the
        # KEV-listed and overdue ones become software alerts.
        fleet_rematched.connect(
            on_fleet_rematched, dispatch_uid="earlywarning.software_alerts_on_rematch"
        )
        # A host that reports a KEV-listed or overdue package (a new host, a package installed
        # since the last import) raises its alerts without waiting for the next import.
        host_evaluated.connect(
            on_host_evaluated, dispatch_uid="earlywarning.software_alerts_on_evaluation"
        )
