from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from training.services.registry import tiny_model_build


class Command(BaseCommand):
    help = "Build the tiny random Llama model (byte-level BPE on our own texts) into var/ and register it."

    def add_arguments(self, parser):
        parser.add_argument("--output", type=Path, default=None, help="default: var/models/tiny-llama")
        parser.add_argument("--no-register", action="store_true")

    def handle(self, *args, output, no_register, **options):
        output = output or Path(settings.VAR_DIR) / "models" / "tiny-llama"
        model = tiny_model_build(output_dir=output, register=not no_register)
        self.stdout.write(f"tiny model in {output}" + (f"; registered as base model {model.name!r}" if model else ""))
