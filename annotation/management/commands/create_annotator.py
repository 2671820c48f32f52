import getpass

from django.core.management.base import BaseCommand, CommandError

from annotation.services.people import annotator_create
from crossfeed.errors import CrossfeedError


class Command(BaseCommand):
    help = "Create an annotator (signup is closed). Prints the API token."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--native", required=True, help="comma-separated language codes, e.g. sw,ta")
        parser.add_argument("--reads", default="", help="comma-separated codes of other languages they read")
        parser.add_argument("--email", default="")
        parser.add_argument("--password", help="default: asked for interactively (or CROSSFEED_PASSWORD)")

    def handle(self, *args, username, native, reads, email, password, **options):
        import os

        password = password or os.environ.get("CROSSFEED_PASSWORD") or getpass.getpass(f"Password for {username}: ")
        try:
            profile, key = annotator_create(
                username=username,
                password=password,
                email=email,
                native_languages=[code for code in native.split(",") if code],
                reading_languages=[code for code in reads.split(",") if code],
            )
        except CrossfeedError as exc:
            raise CommandError(f"{exc.field or 'error'}: {exc.message}") from None
        native_codes, reading_codes = profile.language_codes()
        self.stdout.write(
            f"created {username}: native {', '.join(native_codes)}; reads {', '.join(reading_codes)}\n"
            f"API token: {key}\n"
            "(kept only as a hash: copy it now; `manage.py drf_create_token -r USER` replaces a lost one)"
        )
