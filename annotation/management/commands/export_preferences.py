from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotation.management.commands.import_items import _campaign
from annotation.models import JobStatus
from annotation.services.exports import export_create, export_folder, export_run
from crossfeed.errors import CrossfeedError


class Command(BaseCommand):
    help = "Export a campaign's rankings as preference pairs (or SFT rows), here and now, with a progress bar."

    def add_arguments(self, parser):
        parser.add_argument("campaign", help="campaign id or exact name")
        parser.add_argument("--kind", default="preference", choices=["preference", "sft"])
        parser.add_argument("--format", default="jsonl", choices=["jsonl", "parquet"])
        parser.add_argument("--pairs", default="all", choices=["all", "best_vs_rest", "best_vs_worst"])
        parser.add_argument("--min-judgments", type=int, default=2)
        parser.add_argument("--min-agreement", type=float, default=0.0)
        parser.add_argument("--languages", default="", help="comma-separated response languages (default: all)")
        parser.add_argument("--test-fraction", type=float, default=0.1)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--queue", action="store_true", help="queue it for the task worker instead")

    def handle(self, *args, **options):
        campaign = _campaign(options["campaign"])
        try:
            export = export_create(
                campaign=campaign, created_by=None, kind=options["kind"], format=options["format"],
                pairs=options["pairs"], min_judgments=options["min_judgments"],
                min_agreement=options["min_agreement"], test_fraction=options["test_fraction"], seed=options["seed"],
                languages=[code for code in options["languages"].split(",") if code], enqueue=options["queue"],
            )
        except CrossfeedError as exc:
            details = "; ".join(f"{field}: {' '.join(messages)}" for field, messages in exc.field_errors.items())
            raise CommandError(details or exc.message) from None
        if options["queue"]:
            self.stdout.write(f"queued export {export.id}; the fast lane runs it "
                              "(`manage.py crossfeed_worker --lane fast`)")
            return
        with tqdm(total=export.progress_total, unit=" items", disable=options["verbosity"] < 1) as bar:
            export = export_run(export_id=export.id, progress=lambda done, total: bar.update(done - bar.n))
        if export.status != JobStatus.SUCCEEDED:
            raise CommandError(f"export {export.id} failed: {export.error}")
        self.stdout.write(f"export {export.id}: {export.rows} rows in {export_folder(export)}")
        for file in export.files:
            self.stdout.write(f"  {file['name']}  {file['rows']} rows  sha256 {file['sha256']}")
