from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from crossfeed.errors import CrossfeedError
from instructions.services.sets import instruction_set_import


class Command(BaseCommand):
    help = ("Import an instruction set: Alpaca JSON (an array) or JSONL (instruction, input, output), or TRL messages "
            "JSONL. All or nothing: any bad line is listed and nothing is stored.")

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--name", default="", help="the set's name (default: the file's name)")
        parser.add_argument("--language", default="en", help="the language the set is written in (default: en)")
        parser.add_argument("--notes", default="")

    def handle(self, *args, file: Path, name: str, language: str, notes: str, **options):
        if not file.is_file():
            raise CommandError(f"{file}: no such file")
        with file.open("rb") as source:
            try:
                instruction_set = instruction_set_import(name=name or file.name, source=source, language=language,
                                                         source_name=file.name, notes=notes)
            except CrossfeedError as exc:
                for error in exc.errors:
                    where = f"{file}:{error['line']}" + (f" {error['field']}" if error["field"] else "")
                    self.stderr.write(f"{where}: {error['message']}")
                hidden = getattr(exc, "error_count", len(exc.errors)) - len(exc.errors)
                if hidden > 0:
                    self.stderr.write(f"{file}: {hidden} more problem(s) not listed; fix these and run it again")
                raise CommandError(exc.message) from None
        self.stdout.write(f"{file}: instruction set {instruction_set.name!r} (id {instruction_set.pk}): "
                          f"{instruction_set.rows} rows, {instruction_set.format}, sha256 {instruction_set.sha256}")
