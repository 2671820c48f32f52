from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotation.models import Campaign
from annotation.services.imports import items_import
from crossfeed.errors import CrossfeedError


class Command(BaseCommand):
    help = "Import items from a JSONL file into a campaign (by id or name). All or nothing; idempotent by external_id."

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign id or exact name")
        parser.add_argument("file", type=Path)

    def handle(self, *args, campaign, file, **options):
        target = _campaign(campaign)
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
        with file.open("rb") as source, tqdm(desc="stored", unit=" items", disable=options["verbosity"] < 1) as bar:
            try:
                result = items_import(campaign=target, source=source, progress=lambda n: bar.update(n - bar.n),
                                      source_name=f"command: {file.name}")
            except CrossfeedError as exc:
                for error in exc.errors:
                    where = f"{file}:{error['line']}" + (f" {error['field']}" if error["field"] else "")
                    self.stderr.write(f"{where}: {error['message']}")
                hidden = getattr(exc, "error_count", len(exc.errors)) - len(exc.errors)
                if hidden > 0:
                    self.stderr.write(f"{file}: {hidden} more problem(s) not listed; fix these and run it again")
                raise CommandError(exc.message) from None
        self.stdout.write(
            f"{file}: {result.created} created, {result.updated} updated, {result.unchanged} unchanged "
            f"in campaign {target.name!r}"
        )


def _campaign(ref: str) -> Campaign:
    found = Campaign.objects.filter(pk=int(ref)).first() if ref.isdigit() else None
    found = found or Campaign.objects.filter(name=ref).first()
    if found is None:
        raise CommandError(f"no campaign with id or name {ref!r}")
    return found
