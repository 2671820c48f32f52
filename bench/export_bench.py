"""Export benchmark: N items × 4 responses × 4 judgments through the real export, against the floor.

    .venv/bin/python bench/export_bench.py                  # 250,000 items = 1,000,000 judgments, SQLite
    .venv/bin/python bench/export_bench.py --items 20000    # quicker
    .venv/bin/python bench/export_bench.py --postgres       # also on a private throwaway PostgreSQL cluster

The floor is writing the same number of rows with pyarrow from memory (no database, no pair derivation). Each
measured run is a child process, so its peak RSS is its own. Prints one JSON line per database and format.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _django(var_dir: str, database_url: str | None) -> None:
    os.environ["CROSSFEED_VAR_DIR"] = var_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crossfeed.settings")
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    import django

    django.setup()


def seed(n_items: int) -> int:
    """Insert campaign, items, responses, judgments with executemany: the bench measures the export, not this."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection, transaction
    from django.utils import timezone

    from annotation.models import Campaign

    call_command("migrate", verbosity=0)
    user_model = get_user_model()
    annotators = [user_model.objects.create(username=f"bench{n}") for n in range(16)]
    campaign = Campaign.objects.create(name="bench", overlap=4)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    rng = random.Random(42)
    response_id = judgment_id = 0
    quote = connection.ops.quote_name
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, n_items, 5000):
            items, responses, judgments = [], [], []
            for item_id in range(start + 1, min(start + 5000, n_items) + 1):
                items.append((item_id, campaign.id, f"bench-{item_id}", f"Instruction {item_id} " * 8, "sw",
                              f"Pivot {item_id}", "en", "ta", "0" * 64, 4, 4, 0, now, "{}"))
                ids = []
                for position in range(4):
                    response_id += 1
                    ids.append(response_id)
                    responses.append((response_id, item_id, position, f"Response {position} to {item_id}. " * 12,
                                      "ta", f"model-{position}", "", "{}"))
                for annotator in rng.sample(annotators, 4):
                    judgment_id += 1
                    order = rng.sample([1, 2, 3, 4], 4)
                    ranks = json.dumps({str(r): rank for r, rank in zip(ids, order, strict=True)})
                    flags = json.dumps({str(ids[0]): ["wrong_language"]} if rng.random() < 0.05 else {})
                    judgments.append((judgment_id, item_id, annotator.id, ranks, flags, "", None, 1, now, now))
            cursor.executemany(
                f"INSERT INTO {quote('annotation_item')} (id, campaign_id, external_id, prompt_text, "
                "prompt_language_id, pivot_text, pivot_language_id, response_language_id, content_hash, target, "
                "judgment_count, lease_count, created_at, metadata) VALUES (%s)" % ", ".join(["%s"] * 14), items)
            cursor.executemany(
                f"INSERT INTO {quote('annotation_response')} (id, item_id, position, text, language_id, model_name, "
                "detected_language, metadata) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", responses)
            cursor.executemany(
                f"INSERT INTO {quote('annotation_judgment')} (id, item_id, annotator_id, ranks, flags, comment, "
                "seconds_spent, revision, created_at, updated_at) VALUES (%s)" % ", ".join(["%s"] * 10), judgments)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for table in ("annotation_item", "annotation_response", "annotation_judgment"):
                sequence = f"pg_get_serial_sequence('{table}', 'id')"
                cursor.execute(f"SELECT setval({sequence}, (SELECT MAX(id) FROM {table}))")
            cursor.execute("ANALYZE")
    return campaign.id


def run_export(campaign_id: int, file_format: str) -> dict:
    from annotation.models import Campaign
    from annotation.services.exports import export_create, export_run

    campaign = Campaign.objects.get(pk=campaign_id)
    export = export_create(campaign=campaign, created_by=None, format=file_format, pairs="all", min_judgments=2,
                           enqueue=False)
    start = time.perf_counter()
    export = export_run(export_id=export.id)
    seconds = time.perf_counter() - start
    assert export.status == "succeeded", export.error
    return {"seconds": seconds, "rows": export.rows}


def run_floor(rows: int, file_format: str, folder: str) -> dict:
    """Write `rows` preference rows of the same shape straight from memory: the floor (pyarrow for Parquet)."""
    import pyarrow as pa
    import pyarrow.json  # noqa: F401 - import cost belongs to the floor too
    import pyarrow.parquet as pq

    from annotation.export.writers import BATCH_ROWS, PREFERENCE_SCHEMA

    row = {"prompt": [{"role": "user", "content": "Instruction 1 " * 8}],
           "chosen": [{"role": "assistant", "content": "Response 0 to 1. " * 12}],
           "rejected": [{"role": "assistant", "content": "Response 1 to 1. " * 12}],
           "prompt_language": "sw", "response_language": "ta", "item": "bench-1", "chosen_model": "model-0",
           "rejected_model": "model-1", "votes_for": 3, "votes_against": 1, "n_judgments": 4, "split": "train"}
    batch = [row] * BATCH_ROWS
    start = time.perf_counter()
    path = Path(folder) / f"floor.{file_format}"
    if file_format == "parquet":
        with pq.ParquetWriter(path, PREFERENCE_SCHEMA, compression="zstd") as writer:
            for offset in range(0, rows, BATCH_ROWS):
                writer.write_table(pa.Table.from_pylist(batch[: rows - offset], schema=PREFERENCE_SCHEMA))
    else:
        # pyarrow writes no JSON; the JSONL floor is the same rows serialised from memory by the json module.
        with path.open("wb") as handle:
            for offset in range(0, rows, BATCH_ROWS):
                chunk = batch[: rows - offset]
                handle.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in chunk).encode())
    return {"seconds": time.perf_counter() - start}


def child(args) -> None:
    _django(args.var_dir, args.database_url)
    if args.child == "seed":
        print(json.dumps({"campaign": seed(args.items)}))
    elif args.child == "export":
        result = run_export(args.campaign, args.format)
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))
    else:
        result = run_floor(args.rows, args.format, args.var_dir)
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(result))


def _child(*arguments: str, var_dir: str, database_url: str | None) -> dict:
    command = [sys.executable, __file__, "--var-dir", var_dir, *arguments]
    if database_url:
        command += ["--database-url", database_url]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def bench(database: str, database_url: str | None, n_items: int, formats: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="crossfeed-bench-") as var_dir:
        start = time.perf_counter()
        campaign = _child("--child", "seed", "--items", str(n_items), var_dir=var_dir, database_url=database_url)
        seeded = time.perf_counter() - start
        for file_format in formats:
            export = _child("--child", "export", "--campaign", str(campaign["campaign"]), "--format", file_format,
                            var_dir=var_dir, database_url=database_url)
            floor = _child("--child", "floor", "--rows", str(export["rows"]), "--format", file_format,
                           var_dir=var_dir, database_url=database_url)
            print(json.dumps({
                "bench": "export", "database": database, "format": file_format, "items": n_items,
                "judgments": n_items * 4, "rows": export["rows"], "seconds": round(export["seconds"], 2),
                "peak_rss_mib": round(export["peak_rss_mib"]), "floor_seconds": round(floor["seconds"], 2),
                "ratio_to_floor": round(export["seconds"] / floor["seconds"], 2), "seed_seconds": round(seeded, 1),
                "target": "seconds < 60 and peak_rss_mib < 1536 at 1,000,000 judgments",
            }), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=250_000)
    parser.add_argument("--formats", default="jsonl,parquet")
    parser.add_argument("--postgres", action="store_true", help="also run on a throwaway PostgreSQL cluster")
    parser.add_argument("--child", choices=["seed", "export", "floor"], help=argparse.SUPPRESS)
    parser.add_argument("--var-dir", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    parser.add_argument("--campaign", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--format", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    formats = args.formats.split(",")
    bench("sqlite", None, args.items, formats)
    if args.postgres:
        from tests.postgres import throwaway_cluster

        with throwaway_cluster() as database_url:
            bench("postgresql", database_url, args.items, formats)


if __name__ == "__main__":
    main()
