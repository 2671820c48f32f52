"""Benchmark loaders: the shipped sample sets in the public layouts, and malformed files named by file and line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evaluation.benchmarks import BenchmarkDataError, all_benchmarks, get_benchmark

EXPECTED = {
    "flores-en-xx": (["ar", "fr", "ja", "sw", "ta", "zh-Hans"], 5),
    "flores-xx-en": (["ar", "fr", "ja", "sw", "ta", "zh-Hans"], 5),
    "xlsum": (["ar", "en", "ja", "sw", "ta", "zh-Hans"], 3),
    "pawsx": (["en", "fr", "ja", "zh-Hans"], 4),
    "xcopa": (["it", "sw", "ta", "zh-Hans"], 4),
    "open-ended": (["ar", "en", "fr", "ja", "sw", "ta", "zh-Hans"], 3),
}
# The seed paper's prompt format reads the same files.
EXPECTED["pawsx-seed"], EXPECTED["xcopa-seed"] = EXPECTED["pawsx"], EXPECTED["xcopa"]


def copy_samples(benchmark_name: str, tmp_path: Path) -> Path:
    benchmark = get_benchmark(benchmark_name)
    return Path(shutil.copytree(benchmark.sample_root, tmp_path / benchmark.dataset))


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_it_loads_every_sample_language(name):
    benchmark = get_benchmark(name)
    languages, count = EXPECTED[name]
    assert benchmark.languages(benchmark.sample_root) == languages
    for language in languages:
        examples = benchmark.load(benchmark.sample_root, language)
        assert len(examples) == count, language
        assert len({example.id for example in examples}) == count, "ids must be unique: retries skip by id"
        assert all(example.language == language for example in examples)
        plain = getattr(benchmark, "plain_context", None)
        if plain is not None and plain(examples[0]) is not None:
            # lm-eval's plain-text format: PAWS-X's context is empty, its choices hold the sentences.
            assert all(option.strip() for option in examples[0].options)
            continue
        messages = benchmark.messages(examples[0])
        assert messages[0]["role"] == "user" and messages[0]["content"].strip()


def test_every_benchmark_has_a_task_metrics_and_sample_data():
    assert {b.task for b in all_benchmarks()} == {"translation", "summarization", "classification", "open_ended"}
    for benchmark in all_benchmarks():
        assert benchmark.primary_metric in benchmark.metrics
        assert benchmark.languages(benchmark.sample_root), benchmark.name


def test_flores_pairs_are_line_aligned_in_both_directions():
    into = get_benchmark("flores-en-xx").load(get_benchmark("flores-en-xx").sample_root, "sw")
    back = get_benchmark("flores-xx-en").load(get_benchmark("flores-xx-en").sample_root, "sw")
    assert into[2].input == "The new bridge was built in two years."
    assert into[2].reference == "Daraja jipya lilijengwa kwa miaka miwili."
    assert into[2].expected_language == "sw"
    assert (back[2].input, back[2].reference, back[2].expected_language) == (into[2].reference, into[2].input, "en")
    assert "Swahili" in get_benchmark("flores-en-xx").messages(into[2])[0]["content"]


def test_a_flores_limit_draws_the_same_sentences_in_every_language():
    benchmark = get_benchmark("flores-en-xx")
    picked = {lang: [e.id for e in benchmark.load(benchmark.sample_root, lang, limit=3)] for lang in ("sw", "ja")}
    assert picked["sw"] == picked["ja"] and len(picked["sw"]) == 3
    assert picked["sw"] == sorted(picked["sw"], key=int), "file order"


def test_an_xlsum_limit_takes_the_first_articles():
    benchmark = get_benchmark("xlsum")
    assert [e.id for e in benchmark.load(benchmark.sample_root, "ta", limit=2)] == ["crossfeed-tamil-1",
                                                                                     "crossfeed-tamil-2"]


def test_classification_examples_carry_options_and_the_label():
    # lm-evaluation-harness's choices (tests/evaluation/test_prompts_reference.py checks them against its tasks).
    paws = get_benchmark("pawsx").load(get_benchmark("pawsx").sample_root, "zh-Hans")
    assert paws[1].options == ("上周安娜把自行车卖给了马可。, 对吧? 不是, 上周马可把自行车卖给了安娜。",
                               "上周安娜把自行车卖给了马可。, 对吧? 是, 上周马可把自行车卖给了安娜。")
    assert paws[1].label == 0
    copa = get_benchmark("xcopa").load(get_benchmark("xcopa").sample_root, "sw")
    assert copa[2].options == (" alilala mapema.", " alikula mkate.") and copa[2].label == 1
    assert get_benchmark("xcopa").plain_context(copa[2]) == "Msichana alikuwa na njaa kwa hiyo"
    seed = get_benchmark("xcopa-seed").load(get_benchmark("xcopa-seed").sample_root, "sw")
    assert seed[2].options == ("A", "B") and seed[2].label == 1
    assert "-A: Alilala mapema. -B: Alikula mkate." in get_benchmark("xcopa-seed").messages(seed[2])[0]["content"]


def test_xlsum_files_may_sit_in_a_folder_per_language(tmp_path):
    (tmp_path / "swahili").mkdir()
    shutil.copy(get_benchmark("xlsum").sample_root / "swahili_test.jsonl", tmp_path / "swahili")
    assert get_benchmark("xlsum").languages(tmp_path) == ["sw"]
    assert len(get_benchmark("xlsum").load(tmp_path, "sw")) == 3


def test_open_ended_reads_one_combined_file_with_a_language_field(tmp_path):
    lines = [{"instruction": "Habari?", "language": "sw", "id": "a"},
             {"instruction": "வணக்கம்?", "language": "tam_Taml"},
             {"instruction": "Answer in Tamil: hello?", "language": "en", "response_language": "ta", "id": "x"}]
    (tmp_path / "instructions.jsonl").write_text("\n".join(json.dumps(line) for line in lines), encoding="utf-8")
    benchmark = get_benchmark("open-ended")
    assert benchmark.languages(tmp_path) == ["en", "sw", "ta"]
    [tamil] = benchmark.load(tmp_path, "ta")
    assert tamil.id == "instructions-2" and tamil.expected_language == "ta"
    [english] = benchmark.load(tmp_path, "en")
    assert english.expected_language == "ta", "a cross-lingual prompt expects its answer language"


# --- malformed and missing files ------------------------------------------------------------------------------


def test_a_missing_flores_file_is_named(tmp_path):
    root = copy_samples("flores-en-xx", tmp_path)
    (root / "devtest" / "eng_Latn.devtest").unlink()
    with pytest.raises(BenchmarkDataError, match=r"eng_Latn\.devtest: file not found"):
        get_benchmark("flores-en-xx").load(root, "sw")


def test_flores_files_of_different_lengths_are_refused(tmp_path):
    root = copy_samples("flores-en-xx", tmp_path)
    path = root / "devtest" / "tam_Taml.devtest"
    path.write_text("\n".join(path.read_text(encoding="utf-8").splitlines()[:4]) + "\n", encoding="utf-8")
    with pytest.raises(BenchmarkDataError, match=r"tam_Taml\.devtest: 4 lines, but eng_Latn\.devtest has 5"):
        get_benchmark("flores-xx-en").load(root, "ta")


def test_an_empty_flores_line_is_named_with_its_number(tmp_path):
    root = copy_samples("flores-en-xx", tmp_path)
    path = root / "devtest" / "swh_Latn.devtest"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] = "   "
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(BenchmarkDataError) as caught:
        get_benchmark("flores-en-xx").load(root, "sw")
    assert caught.value.line == 3 and caught.value.path.endswith("swh_Latn.devtest")
    assert "swh_Latn.devtest line 3: empty line" in str(caught.value)


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"text": "An article.", "summary": ', "line 2: not valid JSON"),
        ('{"text": "An article."}', 'line 2: "summary" must be a non-empty string'),
        ('["text", "summary"]', "line 2: expected a JSON object"),
    ],
)
def test_a_bad_xlsum_line_is_named(tmp_path, line, message):
    root = copy_samples("xlsum", tmp_path)
    path = root / "swahili_test.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[1] = line
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(BenchmarkDataError, match=f"swahili_test.jsonl {message}".replace("[", r"\[")):
        get_benchmark("xlsum").load(root, "sw")


def test_a_file_that_is_not_utf8_is_named_with_its_line(tmp_path):
    root = copy_samples("xlsum", tmp_path)
    path = root / "tamil_test.jsonl"
    path.write_bytes(path.read_bytes() + b'{"text": "\xff\xfe", "summary": "x"}\n')
    with pytest.raises(BenchmarkDataError, match=r"tamil_test\.jsonl line 4: not valid UTF-8"):
        get_benchmark("xlsum").load(root, "ta")


@pytest.mark.parametrize(
    "content, message",
    [
        ("id\tsentence1\tsentence2\n1\ta\tb\n", "line 1: expected the header"),
        ("id\tsentence1\tsentence2\tlabel\n1\ta\tb\t1\n2\ta\tb\tmaybe\n", "line 3: label must be one of 0, 1"),
        ("id\tsentence1\tsentence2\tlabel\n1\ta\tb\n", "line 2: expected 4 tab-separated columns, got 3"),
    ],
)
def test_a_bad_pawsx_file_is_named_with_its_line(tmp_path, content, message):
    (tmp_path / "de").mkdir()
    (tmp_path / "de" / "test_2k.tsv").write_text(content, encoding="utf-8")
    with pytest.raises(BenchmarkDataError, match=f"test_2k.tsv {message}"):
        get_benchmark("pawsx").load(tmp_path, "de")


def test_pawsx_leaves_out_rows_with_an_empty_sentence(tmp_path):
    (tmp_path / "de").mkdir()
    (tmp_path / "de" / "test_2k.tsv").write_text("id\tsentence1\tsentence2\tlabel\n1\tEin Satz.\t\t0\n"
                                                 '2\tEr sagte "ja".\tEr sagte ja.\t1\n', encoding="utf-8")
    [example] = get_benchmark("pawsx").load(tmp_path, "de")
    assert example.id == "2" and example.fields["sentence1"] == 'Er sagte "ja".'


def test_a_bad_xcopa_line_is_named(tmp_path):
    root = copy_samples("xcopa", tmp_path)
    path = root / "ta" / "test.ta.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[3])
    row["question"] = "why"
    lines[3] = json.dumps(row, ensure_ascii=False)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(BenchmarkDataError, match=r'test\.ta\.jsonl line 4: "question" must be "cause" or "effect"'):
        get_benchmark("xcopa").load(root, "ta")


def test_an_unknown_language_in_a_combined_instruction_file_is_named(tmp_path):
    (tmp_path / "instructions.jsonl").write_text('{"instruction": "Hi", "language": "en"}\n'
                                                 '{"instruction": "Hi", "language": "klingon"}\n', encoding="utf-8")
    with pytest.raises(BenchmarkDataError, match=r'instructions\.jsonl line 2: "language" must be a language code'):
        get_benchmark("open-ended").load(tmp_path, "en")


def test_a_language_the_benchmark_lacks_is_not_listed():
    # The run planner turns this into a "skipped" row, never a zero (tests/evaluation/test_execution.py).
    assert "sw" not in get_benchmark("pawsx").languages(get_benchmark("pawsx").sample_root)
