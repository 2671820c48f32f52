from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from annotation.services.invitations import annotators_invite, annotators_parse_csv
from crossfeed.errors import CrossfeedError


class Command(BaseCommand):
    help = ("Create annotators from a CSV (username, email, native_languages[, reading_languages]) and e-mail each a "
            "one-time invitation link; all or nothing, every problem listed by line. docs/campaigns.md#people")

    def add_arguments(self, parser):
        parser.add_argument("csv", type=Path, help="the CSV file (UTF-8, header row)")
        parser.add_argument("--check", action="store_true", help="only check the file; create nothing")
        parser.add_argument("--site-url", default=settings.CROSSFEED_SITE_URL,
                            help="where annotators reach the site, for the links (default: CROSSFEED_SITE_URL, "
                                 "%(default)s)")

    def handle(self, *args, csv: Path, check: bool, site_url: str, **options):
        try:
            content = csv.read_bytes()
        except OSError as exc:
            raise CommandError(f"{csv}: {exc.strerror}") from None
        try:
            rows = annotators_parse_csv(content=content)
            if check:
                self.stdout.write(f"{csv}: {len(rows)} annotator(s), no problems; nothing created (--check)")
                return
            results = annotators_invite(rows=rows, created_by=None, base_url=site_url)
        except CrossfeedError as exc:
            lines = [f"{csv}:{error['line']}: {error['field']}: {error['message']}" for error in exc.errors]
            raise CommandError("\n".join([exc.message, *lines])) from None
        for result in results:
            state = "e-mailed" if result.sent else f"NOT e-mailed ({result.error})"
            self.stdout.write(f"{result.username} <{result.email}>: {state}\n  {result.link}")
        self.stdout.write(f"{len(results)} annotator(s) created; each link works once, for "
                          f"{settings.CROSSFEED['INVITATION_DAYS']} days")
