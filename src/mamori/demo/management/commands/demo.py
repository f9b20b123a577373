from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mamori.demo import builder, loader


class Command(BaseCommand):
    help = (
        "Load the demo data (once): the working group's roster, and fictitious organisations "
        "with assessments, certificates, hosts, supply-chain surveys and early-warning alerts; "
        "print the demo users and their passwords."
    )

    def handle(self, *args, **options):
        try:
            loaded_before = builder.already_loaded()
        except builder.EarlierDemoLoaded as exc:
            raise CommandError(str(exc)) from None
        if loaded_before:
            self.stdout.write("Demo data is already loaded.")
        else:
            members = len(builder.roster()["organisations"])
            self.stdout.write(
                f"Loading demo data: the working group's roster ({members} members and the "
                "convenor), fictitious organisations with assessments in every state, "
                "certificates…"
            )
        loaded = loader.load(settings.VAR_DIR)
        self.stdout.write(loaded.hosts.summary())
        self.stdout.write(loaded.supplychain.summary())
        self.stdout.write(loaded.earlywarning.summary())
        credentials = loaded.credentials
        if not credentials:
            self.stdout.write(f"(No demo credentials on file at {loaded.credentials_file}.)")
            return
        self.stdout.write(
            "\nDemo users (passwords are random per installation; also in "
            f"{loaded.credentials_file}):"
        )
        for user in credentials:
            self.stdout.write(
                f"  {user.username:<16} {user.password:<18} {user.role:<22} {user.organisation}"
            )
        mfa_users = [user for user in credentials if user.totp_secret]
        if mfa_users:
            self.stdout.write(
                "\nAssessors and the scheme owner need a TOTP code. Add these keys to "
                "an authenticator app (or run: oathtool --totp -b KEY):"
            )
            for user in mfa_users:
                self.stdout.write(
                    f"  {user.username:<16} {user.totp_secret}  {builder.otpauth_uri(user)}"
                )
        self.stdout.write("")
