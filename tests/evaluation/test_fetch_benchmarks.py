"""`manage.py fetch_benchmarks` (issue 12, point 6): without internet it fails at once with a message that says what
to do and writes nothing; from a copy of a Hub repository it writes the release layouts the loaders read and points
the benchmark source at them. Nothing here reaches the network: the failing runs point the Hub client at a closed
local port or switch it offline, in a child process (huggingface_hub reads both settings when it is imported)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command

from evaluation.benchmarks import get_benchmark
from evaluation.models import BenchmarkSource
from evaluation.services.sources import benchmark_root

ROOT = Path(__file__).resolve().parents[2]


def run_command(tmp_path: Path, *arguments: str, **environment: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "CROSSFEED_VAR_DIR": str(tmp_path / "var"), "HF_HOME": str(tmp_path / "hf"),
           **environment}
    return subprocess.run([sys.executable, "manage.py", "fetch_benchmarks", *arguments], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("environment, reason", [
    ({"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_OFFLINE": "0"}, "cannot be reached from this machine"),
    ({"HF_HUB_OFFLINE": "1"}, "offline mode is on"),
])
def test_without_internet_it_fails_with_a_clear_message_and_writes_nothing(tmp_path, environment, reason):
    dest = tmp_path / "benchmarks"
    result = run_command(tmp_path, "belebele", "xcopa", "--dest", str(dest), **environment)
    assert result.returncode == 1, result.stdout
    message = " ".join(result.stderr.split())
    assert "could not fetch the benchmark data: the Hugging Face Hub (facebook/belebele)" in message
    assert reason in message
    assert "run it on a machine with internet" in message and "--from DIR" in message
    assert "Traceback" not in result.stderr
    assert not dest.exists()


def write_hub_copy(folder: Path, split: str, files: dict[str, tuple[str, str]]) -> Path:
    """A folder laid out like a Hub data set repository: a README whose `configs` name each file, and the files."""
    lines = ["---", "configs:"]
    for config, (path, content) in files.items():
        lines += [f"- config_name: {config}", "  data_files:", f"  - split: {split}", f"    path: {path}"]
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.endswith(".parquet"):
            pq.write_table(pa.Table.from_pylist(json.loads(content)), target)
        else:
            target.write_text(content, encoding="utf-8")
    (folder / "README.md").write_text("\n".join([*lines, "---", ""]), encoding="utf-8")
    return folder


def flores_rows(code: str, count: int) -> str:
    # Stored out of order on purpose: the devtest order is the rows' id, and the seed's sample indexes that order.
    rows = [{"id": number, "iso_639_3": code[:3], "iso_15924": code[4:], "text": f"{code} sentence {number}"}
            for number in range(1, count + 1)]
    return json.dumps(rows[::-1])


@pytest.mark.django_db
def test_from_a_copy_of_flores_plus_it_writes_the_devtest_files_and_uses_them(tmp_path):
    copy = write_hub_copy(tmp_path / "flores_plus", "devtest", {
        code: (f"devtest/{code}.parquet", flores_rows(code, 12)) for code in ("eng_Latn", "hin_Deva", "cmn_Hans")})
    dest = tmp_path / "benchmarks"
    out = io.StringIO()
    call_command("fetch_benchmarks", "flores200", "--from", str(copy), "--dest", str(dest),
                 "--languages", "hi,zh-Hans", stdout=out)
    folder = dest / "flores200"
    assert "flores200: 3 languages, 36 rows" in out.getvalue()
    assert sorted(path.name for path in (folder / "devtest").iterdir()) == [
        "eng_Latn.devtest", "hin_Deva.devtest", "zho_Hans.devtest"], "FLORES+ cmn_Hans is zho_Hans; English added"
    assert (folder / "devtest" / "hin_Deva.devtest").read_text(encoding="utf-8").splitlines()[:2] == [
        "hin_Deva sentence 1", "hin_Deva sentence 2"]
    assert BenchmarkSource.objects.get(name="flores200").path == str(folder.resolve())
    benchmark = get_benchmark("flores-en-xx")
    assert benchmark_root(benchmark) == folder.resolve()
    assert benchmark.languages(benchmark_root(benchmark)) == ["hi", "zh-Hans"]
    [first, *_] = benchmark.load(benchmark_root(benchmark), "hi", limit=1)
    assert (first.input, first.reference) == (f"eng_Latn sentence {first.id}", f"hin_Deva sentence {first.id}")


@pytest.mark.django_db
def test_from_a_copy_of_belebele_and_paws_x_the_loaders_read_what_it_wrote(tmp_path):
    samples = get_benchmark("belebele").sample_root
    belebele = write_hub_copy(tmp_path / "belebele-copy", "test", {
        code: (f"data/{code}.jsonl", (samples / f"{code.replace('_Latn', '_Deva')}.jsonl").read_text(encoding="utf-8"))
        for code in ("hin_Deva", "urd_Arab", "hin_Latn")})
    paws = [{"id": 1, "sentence1": 'He said "yes"\tloudly.', "sentence2": "He said yes, loudly.", "label": 1},
            {"id": 2, "sentence1": "The cat sat.", "sentence2": "The mat sat on the cat.", "label": 0}]
    pawsx = write_hub_copy(tmp_path / "paws-x-copy", "test", {
        "en": ("en/test-00000-of-00001.parquet", json.dumps(paws))})
    dest = tmp_path / "benchmarks"
    call_command("fetch_benchmarks", "belebele", "--from", str(belebele), "--dest", str(dest), stdout=io.StringIO())
    call_command("fetch_benchmarks", "pawsx", "--from", str(pawsx), "--dest", str(dest), stdout=io.StringIO())
    reader = get_benchmark("belebele")
    assert reader.languages(dest / "belebele") == ["hi", "ur"], "hin_Latn is outside the registry"
    assert [e.label for e in reader.load(dest / "belebele", "ur")] == [e.label for e in reader.load(samples, "ur")]
    [first, second] = get_benchmark("pawsx").load(dest / "pawsx", "en")
    assert (first.fields["sentence1"], first.label, second.label) == ('He said "yes" loudly.', 1, 0)
    assert set(BenchmarkSource.objects.values_list("name", flat=True)) == {"belebele", "pawsx"}


@pytest.mark.django_db
def test_from_a_copy_of_the_hubs_parquet_export_of_xl_sum_it_writes_the_release_files(tmp_path):
    # XL-Sum's repository is a loading script, which `datasets` no longer runs: its rows are read from the Hub's
    # Parquet export (revision refs/convert/parquet), laid out <configuration>/<split>/*.parquet.
    export = tmp_path / "xlsum-parquet"
    for name, text in (("hindi", "हिंदी लेख।"), ("urdu", "اردو مضمون۔"), ("kirundi", "Inkuru.")):
        (export / name / "test").mkdir(parents=True)
        rows = [{"id": f"{name}-{n}", "url": f"https://example.org/{n}", "title": "T", "summary": f"S{n}",
                 "text": f"{text} {n}"} for n in range(3)]
        pq.write_table(pa.Table.from_pylist(rows), export / name / "test" / "0000.parquet")
        (export / name / "validation").mkdir()
        pq.write_table(pa.Table.from_pylist(rows[:1]), export / name / "validation" / "0000.parquet")
    dest = tmp_path / "benchmarks"
    call_command("fetch_benchmarks", "xlsum", "--from", str(export), "--dest", str(dest), "--languages", "hi,ur",
                 stdout=io.StringIO())
    assert sorted(path.name for path in (dest / "xlsum").iterdir()) == ["hindi_test.jsonl", "urdu_test.jsonl"]
    examples = get_benchmark("xlsum").load(benchmark_root(get_benchmark("xlsum")), "ur")
    assert [(e.id, e.reference) for e in examples] == [("urdu-0", "S0"), ("urdu-1", "S1"), ("urdu-2", "S2")]


@pytest.mark.django_db
def test_it_refuses_an_unknown_data_set_or_language(tmp_path):
    with pytest.raises(CommandError, match="unknown data set 'mmlu'; one of flores200, xlsum"):
        call_command("fetch_benchmarks", "mmlu", "--dest", str(tmp_path))
    with pytest.raises(CommandError, match="unknown language 'klingon'"):
        call_command("fetch_benchmarks", "belebele", "--languages", "klingon", "--dest", str(tmp_path))
    with pytest.raises(CommandError, match="is not a folder on this machine"):
        call_command("fetch_benchmarks", "belebele", "--from", str(tmp_path / "nowhere"), "--dest", str(tmp_path))
    assert not BenchmarkSource.objects.exists()
