from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class VerificationConfig(AppConfig):
    name = "mamori.verification"
    label = "verification"
    verbose_name = _("Technical verification")

    def ready(self) -> None:
        from mamori.advisories.signals import advisories_changed
        from mamori.verification.tasks import on_advisories_changed

        # New or changed advisories re-match the hosts that have an affected package.
        advisories_changed.connect(
            on_advisories_changed, dispatch_uid="verification.rematch_on_advisories"
        )
