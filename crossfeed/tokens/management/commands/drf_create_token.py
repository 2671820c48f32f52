"""`manage.py drf_create_token USER`, as DRF's command of the same name (the API contract names it), writing the
hashed token store. DRF's returned a user's existing key; a hash cannot be shown again, so every call prints a new
key. The user's older tokens keep working unless -r/--reset is given."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from crossfeed.tokens.services import token_issue


class Command(BaseCommand):
    help = "Create an API token for a user and print it (it is stored only as a hash: copy it now)."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("-r", "--reset", action="store_true", dest="reset_token",
                            help="revoke the user's other tokens first")

    def handle(self, *args, username, reset_token, **options):
        user_model = get_user_model()
        try:
            user = user_model._default_manager.get_by_natural_key(username)
        except user_model.DoesNotExist:
            raise CommandError(f"Cannot create the Token: user {username} does not exist") from None
        key = token_issue(user=user, replace=reset_token)
        # The same line as DRF's command, which scripts parse.
        self.stdout.write(f"Generated token {key} for user {username}")
