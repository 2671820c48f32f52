"""Memory and size: the import of a 100,000-item JSONL file, and the annotation page of an 8 × 20,000-character item.

    .venv/bin/python bench/size_bench.py                 # 100,000 items
    .venv/bin/python bench/size_bench.py --items 20000

Prints two JSON lines. The import runs in a child process so that its peak RSS is its own; the baseline beside
it is the same child reading the file line by line and parsing every line with json.loads (what any importer must
at least do). The page weight is the HTML of the annotation partial as served, plus the static files it loads.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write_items(path: Path, n_items: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for index in range(n_items):
            item = {
                "external_id": f"size-{index}",
                "prompt": {"text": f"Eleza kwa nini anga ni la buluu, swali {index}. " * 4, "language": "sw"},
                "pivot": {"text": f"Explain why the sky is blue, question {index}.", "language": "en"},
                "responses": [{"text": f"பதில் {index}-{n}: " + "வானம் நீல நிறமாக தெரிகிறது. " * 12,
                               "language": "ta", "model": f"model-{n}"} for n in range(4)],
            }
            handle.write(json.dumps(item, ensure_ascii=False) + "\n")


def child(mode: str, path: str, var_dir: str) -> None:
    os.environ["CROSSFEED_VAR_DIR"] = var_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crossfeed.settings")
    start = time.perf_counter()
    if mode == "baseline":
        lines = 0
        with open(path, "rb") as handle:
            for raw in handle:
                json.loads(raw)
                lines += 1
        result = {"lines": lines}
    else:
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        from annotation.services.campaigns import campaign_create
        from annotation.services.imports import items_import

        campaign = campaign_create(name="size", created_by=None)
        start = time.perf_counter()  # the import alone, not the migration
        with open(path, "rb") as handle:
            result = items_import(campaign=campaign, source=handle).as_dict()
    result["seconds"] = time.perf_counter() - start
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def run_child(mode: str, path: Path, var_dir: str) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", mode, "--path", str(path), "--var-dir", var_dir],
                          capture_output=True, text=True, check=False, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def import_bench(n_items: int) -> None:
    with tempfile.TemporaryDirectory(prefix="crossfeed-size-") as folder:
        path = Path(folder) / "items.jsonl"
        write_items(path, n_items)
        baseline = run_child("baseline", path, folder)
        imported = run_child("import", path, folder)
        print(json.dumps({
            "bench": "import_memory", "items": n_items, "file_mib": round(path.stat().st_size / 2**20, 1),
            "seconds": round(imported["seconds"], 1), "peak_rss_mib": round(imported["peak_rss_mib"]),
            "baseline_parse_seconds": round(baseline["seconds"], 1),
            "baseline_peak_rss_mib": round(baseline["peak_rss_mib"]),
            "ratio_seconds": round(imported["seconds"] / baseline["seconds"], 1),
            "created": imported["created"], "bound": "peak RSS independent of the file size (streamed, two passes)",
        }), flush=True)


def page_bench() -> None:
    """The annotation partial of an item with 8 responses of 20,000 characters, rendered by the real view."""
    with tempfile.TemporaryDirectory(prefix="crossfeed-page-") as folder:
        os.environ["CROSSFEED_VAR_DIR"] = folder
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crossfeed.settings")
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command
        from django.test import Client

        settings.ALLOWED_HOSTS = ["*"]
        call_command("migrate", verbosity=0)
        from annotation.services.campaigns import campaign_create
        from annotation.services.imports import items_import
        from annotation.services.people import annotator_create

        campaign = campaign_create(name="page", created_by=None)
        text = ("ஒரு நீண்ட பதில். " * 1200)[:20_000]
        item = {"external_id": "big", "prompt": {"text": "Explain, at length.", "language": "en"},
                "responses": [{"text": f"{n} {text}"[:20_000], "language": "ta"} for n in range(8)]}
        items_import(campaign=campaign, source=[item])
        profile, _ = annotator_create(username="reader", password="a-long-password-1234", native_languages=["ta"],
                                      reading_languages=["en"])
        client = Client()
        client.force_login(profile.user)
        start = time.perf_counter()
        partial = client.post(f"/campaigns/{campaign.id}/next/", HTTP_HX_REQUEST="true")
        seconds = time.perf_counter() - start
        shell = client.get(f"/campaigns/{campaign.id}/annotate/")
        static = sum((ROOT / "static" / name).stat().st_size for name in
                     ["css/crossfeed.css", "js/annotate.js", "vendor/htmx-2.0.8/htmx.min.js"])
        text_chars = 8 * 20_000
        print(json.dumps({
            "bench": "page_weight", "responses": 8, "chars_per_response": 20_000,
            "partial_kib": round(len(partial.content) / 1024), "page_shell_kib": round(len(shell.content) / 1024),
            "static_kib": round(static / 1024), "render_ms": round(seconds * 1000),
            "text_utf8_kib": round(len(text.encode()) * 8 / 1024),
            "overhead_ratio": round(len(partial.content) / (len(text.encode()) * 8), 2),
            "chars": text_chars,
        }), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    parser.add_argument("--var-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.path, args.var_dir)
        return
    import_bench(args.items)
    page_bench()


if __name__ == "__main__":
    main()
