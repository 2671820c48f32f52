from django.core.management.base import BaseCommand

from annotation.services.assignment import leases_reclaim


class Command(BaseCommand):
    help = "Give the places of expired leases back to their items (next() also does this per campaign)."

    def handle(self, *args, **options):
        self.stdout.write(f"reclaimed {leases_reclaim()} expired lease(s)")
