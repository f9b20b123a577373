"""Every token expires from now on; tokens issued before had no expiry (or an unlimited one).

The choice: each existing token keeps working for the default lifetime of its kind counted from
the day of this migration (MAMORI_TOKEN_LIFETIME_DAYS, MAMORI_AGENT_TOKEN_LIFETIME_DAYS), not from
the day it was issued. Counting from issue would end old tokens the moment the upgrade runs, and
agents on hosts would stop reporting without warning; counted from today, their owners see them
on the token pages as expiring well before (MAMORI_TOKEN_EXPIRY_WARNING_DAYS) and rotate them. A
token that already had an expiry keeps it, brought within the maximum lifetime from today.
"""

from datetime import timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone


def give_every_token_an_expiry(apps, schema_editor):
    ApiToken = apps.get_model("accounts", "ApiToken")
    now = timezone.now()
    longest = now + timedelta(days=settings.TOKEN_MAX_LIFETIME_DAYS)
    for token in ApiToken.objects.filter(lifetime_days__isnull=True).iterator():
        token.lifetime_days = settings.TOKEN_LIFETIME_DAYS[token.kind]
        if token.expires_at is None:
            token.expires_at = now + timedelta(days=token.lifetime_days)
        token.expires_at = min(token.expires_at, longest)
        token.save(update_fields=["lifetime_days", "expires_at"])


class Migration(migrations.Migration):

    dependencies = [
        ('accounts', '0003_apitoken_lifetime_and_replacement'),
    ]

    operations = [
        migrations.RunPython(give_every_token_an_expiry, migrations.RunPython.noop),
    ]
