from django.core.management.base import BaseCommand

from annotation.services.imports import imports_cleanup


class Command(BaseCommand):
    help = (
        "Delete the items that failed or dead imports staged (invisible rows left by a killed import). Every import "
        "also does this when it starts; run it at start-up or from cron to reclaim the space sooner."
    )

    def handle(self, *args, **options):
        self.stdout.write(f"cleaned up {imports_cleanup()} failed import(s)")
