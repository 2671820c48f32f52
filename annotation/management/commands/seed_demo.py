from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from annotation.models import Campaign
from annotation.services.demo import demo_logins, demo_seed


class Command(BaseCommand):
    help = "Seed the demo campaign, an admin and annotators into an empty database, and print the logins."

    def add_arguments(self, parser):
        parser.add_argument("--if-empty", action="store_true", help="do nothing (but print logins) if not empty")

    def handle(self, *args, if_empty, **options):
        empty = not Campaign.objects.exists() and not get_user_model().objects.exists()
        if empty:
            logins = demo_seed(var_dir=settings.VAR_DIR)
            self.stdout.write("Seeded the demo campaign.")
        elif if_empty:
            logins = demo_logins(settings.VAR_DIR)
        else:
            raise CommandError("the database is not empty; the demo is only seeded into an empty database")
        if logins:
            self.stdout.write("Demo logins (also in var/demo-logins.json):")
            for login in logins:
                self.stdout.write(f"  {login.username:<10} {login.password:<18} {login.role:<10} {login.languages}")
