"""`manage.py fetch_spbleu_model`: download the FLORES-200 SentencePiece model for spBLEU, on a machine with internet.

Scoring never downloads (evaluation/metrics/text.py): without this file translation results carry an spBLEU row
that says "spBLEU: model missing". The URL is the one sacrebleu itself uses for its `flores200` tokenizer, so the
scores equal sacrebleu's `--tokenize flores200`.
"""

import os
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from sacrebleu.tokenizers.tokenizer_spm import SPM_MODELS

MAX_BYTES = 64 * 1024 * 1024  # the model is about 4.6 MiB; anything this big is not it


class Command(BaseCommand):
    help = ("Download the FLORES-200 SentencePiece model that spBLEU needs (sacrebleu's flores200 tokenizer) to "
            "settings.SPBLEU_MODEL (CROSSFEED_SPBLEU_MODEL; default var/models/flores200sacrebleuspm). Needs "
            "internet, or --from a copy of the file.")

    def add_arguments(self, parser):
        parser.add_argument("--url", default=SPM_MODELS["flores200"]["url"],
                            help="where to download it from (default: sacrebleu's own address for it)")
        parser.add_argument("--from", dest="source", type=Path, default=None,
                            help="copy this file instead of downloading (e.g. ~/.sacrebleu/models/"
                                 "flores200sacrebleuspm from a machine where sacrebleu fetched it)")
        parser.add_argument("--dest", type=Path, default=None, help="where to write it (default: settings)")
        parser.add_argument("--force", action="store_true", help="replace a model that is already there")

    def handle(self, *args, **options):
        dest: Path = options["dest"] or settings.SPBLEU_MODEL
        if dest.is_file() and not options["force"]:
            self.stdout.write(f"The spBLEU model is already at {dest}; --force replaces it.")
            return
        if options["source"] is not None:
            try:
                data = options["source"].read_bytes()
            except OSError as exc:
                raise CommandError(f"--from {options['source']}: cannot read it ({exc.strerror}).") from None
        else:
            data = self._download(options["url"])
        self._check(data)
        dest.parent.mkdir(parents=True, exist_ok=True)
        # Written beside the target and renamed: a half-written model never stands where scoring looks for it.
        handle, partial = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(partial, dest)
        self.stdout.write(self.style.SUCCESS(
            f"Wrote the FLORES-200 SentencePiece model ({len(data):,} bytes) to {dest}; translation results of the "
            "next evaluations have spBLEU."))

    def _download(self, url: str) -> bytes:
        try:
            with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (an admin's URL, or sacrebleu's)
                data = response.read(MAX_BYTES + 1)
        except (urllib.error.URLError, OSError) as exc:
            raise CommandError(
                f"could not download the spBLEU model from {url}: {getattr(exc, 'reason', exc)}. This command needs "
                "internet: run it on a machine that has it and copy the file here (or use --from FILE); without it "
                "translation results say 'spBLEU: model missing' and keep BLEU and chrF++."
            ) from None
        if len(data) > MAX_BYTES:
            raise CommandError(f"{url} sent more than {MAX_BYTES // 2**20} MiB: that is not the spBLEU model.")
        return data

    def _check(self, data: bytes) -> None:
        import sentencepiece

        processor = sentencepiece.SentencePieceProcessor()
        try:
            processor.LoadFromSerializedProto(data)
        except (RuntimeError, OSError) as exc:
            raise CommandError(f"the file is not a SentencePiece model ({exc}); nothing was written.") from None
