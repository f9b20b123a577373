from django.conf import settings
from django.core.management.base import BaseCommand

from mamori.demo import builder, hosts, supplychain


class Command(BaseCommand):
    help = (
        "Load the demo data (once), upload the demo hosts' evidence and print the demo users "
        "and their passwords."
    )

    def handle(self, *args, **options):
        credentials_file = settings.VAR_DIR / "demo-credentials.json"
        if builder.already_loaded():
            credentials = builder.read_credentials(credentials_file)
            self.stdout.write("Demo data is already loaded.")
        else:
            self.stdout.write(
                "Loading demo data: 37 working-group organisations, assessments in "
                "every state, certificates…"
            )
            credentials = builder.build(credentials_file)
        # Hosts with evidence, after the organisations exist; idempotent, so it also runs when
        # the rest was loaded before (and the hosts check in again on a later day).
        self.stdout.write(hosts.build().summary())
        # The supply-chain scenarios (banks' ICT, medical devices); idempotent as well.
        self.stdout.write(supplychain.build().summary())
        if not credentials:
            self.stdout.write(f"(No demo credentials on file at {credentials_file}.)")
            return
        self.stdout.write(
            f"\nDemo users (passwords are random per installation; also in {credentials_file}):"
        )
        for user in credentials:
            self.stdout.write(
                f"  {user.username:<20} {user.password:<20} {user.role:<22} {user.organisation}"
            )
        mfa_users = [user for user in credentials if user.totp_secret]
        if mfa_users:
            self.stdout.write(
                "\nAssessors and the scheme owner need a TOTP code. Add these keys to "
                "an authenticator app (or run: oathtool --totp -b KEY):"
            )
            for user in mfa_users:
                self.stdout.write(
                    f"  {user.username:<20} {user.totp_secret}  {builder.otpauth_uri(user)}"
                )
        self.stdout.write("")
