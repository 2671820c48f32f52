"""Benchmark data (issue 12, points 3 and 6): the seed's FLORES sample, the protocol sizes, documents shortened from
their end instead of cut prompts, Belebele, what each public release covers, and the coverage of the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.urls import reverse

from annotation.languages import all_languages
from evaluation.benchmarks import BenchmarkDataError, Example, fit_messages, get_benchmark
from evaluation.benchmarks.base import seeded_sample
from evaluation.benchmarks.hub import BELEBELE_CODES, RELEASES
from evaluation.services import benchmark_source_set
from evaluation.services.sources import FULL, NONE, SAMPLE, SUPPORTED, benchmark_coverage

DEVTEST_SIZE = 1012  # sentences in every FLORES-200 devtest file


def write_flores(root: Path, codes: tuple[str, ...], count: int) -> Path:
    (root / "devtest").mkdir(parents=True)
    for code in codes:
        lines = "".join(f"{code} sentence {number}\n" for number in range(1, count + 1))
        (root / "devtest" / f"{code}.devtest").write_text(lines, encoding="utf-8")
    return root


# --- the seed's FLORES sample ----------------------------------------------------------------------------------

def test_the_flores_sample_is_what_datasets_shuffle_seed_42_select_200_picks():
    datasets = pytest.importorskip("datasets")
    # The seed: Dataset.from_list(rows).shuffle(seed=42).select(range(200)) on the devtest in file order.
    picked = datasets.Dataset.from_dict({"line": list(range(DEVTEST_SIZE))}).shuffle(seed=42).select(range(200))
    assert seeded_sample(DEVTEST_SIZE, 200) == sorted(picked["line"])
    # A smaller limit is the start of the same shuffle, so it is a subset of the seed's sample.
    first_50 = datasets.Dataset.from_dict({"line": list(range(DEVTEST_SIZE))}).shuffle(seed=42).select(range(50))
    assert seeded_sample(DEVTEST_SIZE, 50) == sorted(first_50["line"])


def test_a_flores_run_without_a_limit_takes_the_seeds_200_sentences_per_direction(tmp_path):
    root = write_flores(tmp_path / "flores", ("eng_Latn", "hin_Deva"), DEVTEST_SIZE)
    expected_ids = [str(index + 1) for index in seeded_sample(DEVTEST_SIZE, 200)]
    for name in ("flores-en-xx", "flores-xx-en"):
        examples = get_benchmark(name).load(root, "hi")
        assert [example.id for example in examples] == expected_ids, name
    into_hindi = get_benchmark("flores-en-xx").load(root, "hi")
    line = int(into_hindi[0].id)
    assert (into_hindi[0].input, into_hindi[0].reference) == (f"eng_Latn sentence {line}", f"hin_Deva sentence {line}")
    assert len(get_benchmark("flores-en-xx").load(root, "hi", limit=DEVTEST_SIZE)) == DEVTEST_SIZE


def test_an_xlsum_run_without_a_limit_takes_the_first_250_articles(tmp_path):
    lines = [json.dumps({"id": f"a{n}", "text": f"Article {n}.", "summary": f"Summary {n}."}) for n in range(300)]
    (tmp_path / "hindi_test.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    examples = get_benchmark("xlsum").load(tmp_path, "hi")
    assert [example.id for example in examples] == [f"a{n}" for n in range(250)]


# --- documents too long for the context lose their end, not the instruction -----------------------------------

def test_a_long_article_keeps_its_opening_and_the_instruction():
    xlsum = get_benchmark("xlsum")
    article = " ".join(f"Sentence {n} of the article." for n in range(400))
    example = Example(id="1", language="en", input=article, expected_language="en", reference="Summary.")
    whole = xlsum.messages(example)[-1]["content"]
    budget = len(whole) - len(article) + 300  # room for the instruction and the first 300 characters

    def fits(messages):
        return sum(len(message["content"]) for message in messages) <= budget

    messages, shortened = fit_messages(xlsum, example, fits)
    content = messages[-1]["content"]
    assert shortened and fits(messages)
    kept = article[:300].rstrip()
    assert content == whole.replace(article, kept), \
        "the longest opening that fits is kept, and the instruction around the article is whole"
    assert "Sentence 0 of the article." in content and "Sentence 399" not in content


def test_a_prompt_that_fits_or_has_no_document_is_left_whole():
    xlsum, flores = get_benchmark("xlsum"), get_benchmark("flores-en-xx")
    example = Example(id="1", language="sw", input="Habari fupi.", expected_language="sw", reference="Fupi.")
    assert fit_messages(xlsum, example, lambda messages: True) == (xlsum.messages(example), False)
    sentence = Example(id="1", language="sw", input="A sentence.", expected_language="sw", reference="Sentensi.",
                       fields={"source": "en", "target": "sw"})
    assert fit_messages(flores, sentence, lambda messages: False) == (flores.messages(sentence), False)


# --- Belebele --------------------------------------------------------------------------------------------------

def test_belebele_loads_its_hand_written_samples():
    belebele = get_benchmark("belebele")
    assert belebele.task == "classification" and belebele.metrics == ("accuracy",)
    assert belebele.languages(belebele.sample_root) == ["en", "fr", "hi", "sw", "ur"]
    for language in ("en", "fr", "hi", "sw", "ur"):
        examples = belebele.load(belebele.sample_root, language)
        assert [example.label for example in examples] == [1, 2, 0], language
        assert all(example.options == (" A", " B", " C", " D") for example in examples), "lm-eval's delimiter"
        assert len({example.id for example in examples}) == 3


def test_the_belebele_prompt_is_lm_evals_text():
    belebele = get_benchmark("belebele")
    [first, *_] = belebele.load(belebele.sample_root, "en")
    row = json.loads((belebele.sample_root / "eng_Latn.jsonl").read_text(encoding="utf-8").splitlines()[0])
    # lm-evaluation-harness, lm_eval/tasks/belebele/_default_template_yaml, doc_to_text (its colon is U+FF1A).
    expected = (f"P: {row['flores_passage']}\nQ: {row['question'].strip()}\nA: {row['mc_answer1']}\n"
                f"B: {row['mc_answer2']}\nC: {row['mc_answer3']}\nD: {row['mc_answer4']}\nAnswer\uff1a")
    assert belebele.plain_context(first) == expected
    assert belebele.messages(first) == [{"role": "user", "content": expected}]


def test_the_belebele_prompt_matches_the_installed_lm_eval_template():
    yaml = pytest.importorskip("yaml")
    jinja2 = pytest.importorskip("jinja2")
    lm_eval = pytest.importorskip("lm_eval")
    template = Path(lm_eval.__file__).parent / "tasks" / "belebele" / "_default_template_yaml"
    config = yaml.safe_load(template.read_text(encoding="utf-8"))
    belebele = get_benchmark("belebele")
    for line, example in zip((belebele.sample_root / "hin_Deva.jsonl").read_text(encoding="utf-8").splitlines(),
                             belebele.load(belebele.sample_root, "hi"), strict=True):
        row = json.loads(line)
        assert belebele.plain_context(example) == jinja2.Template(config["doc_to_text"]).render(**row)
        delimiter = config.get("target_delimiter", " ")  # lm-eval's default when the task sets none
        assert list(example.options) == [delimiter + choice for choice in config["doc_to_choice"]]
        assert example.label == int(jinja2.Template(config["doc_to_target"]).render(**row))


def test_belebele_reads_the_hubs_data_folder_and_ignores_variants_outside_the_registry(tmp_path):
    belebele = get_benchmark("belebele")
    (tmp_path / "data").mkdir()
    for code in ("urd_Arab", "urd_Latn"):
        (tmp_path / "data" / f"{code}.jsonl").write_bytes((belebele.sample_root / "urd_Arab.jsonl").read_bytes())
    assert belebele.languages(tmp_path) == ["ur"]
    assert len(belebele.load(tmp_path, "ur")) == 3


def test_a_bad_belebele_answer_number_is_named_with_its_line(tmp_path):
    belebele = get_benchmark("belebele")
    lines = (belebele.sample_root / "swh_Latn.jsonl").read_text(encoding="utf-8").splitlines()
    row = json.loads(lines[1])
    row["correct_answer_num"] = "5"
    lines[1] = json.dumps(row, ensure_ascii=False)
    (tmp_path / "swh_Latn.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(BenchmarkDataError, match=r"swh_Latn\.jsonl line 2: label must be one of 1, 2, 3, 4"):
        belebele.load(tmp_path, "sw")


# --- what the public releases cover, and the registry's coverage -----------------------------------------------

def test_each_benchmark_knows_the_languages_of_its_public_release():
    codes = {spec.code for spec in all_languages()}
    assert set(get_benchmark("flores-en-xx").supported_languages()) == codes - {"en"}
    assert get_benchmark("pawsx").supported_languages() == ["de", "en", "es", "fr", "ja", "ko", "zh-Hans"]
    assert get_benchmark("xcopa").supported_languages() == ["et", "ht", "id", "it", "qu", "sw", "ta", "th", "tr",
                                                            "vi", "zh-Hans"]
    assert {"hi", "ur", "sw", "zh-Hans"} <= set(get_benchmark("xlsum").supported_languages())
    belebele = set(get_benchmark("belebele").supported_languages())
    assert len(BELEBELE_CODES) == 122 and {"hi", "ur", "am", "yo", "zh-Hant"} <= belebele and "qu" not in belebele
    assert get_benchmark("open-ended").supported_languages() is None
    assert {release.hub_repo for release in RELEASES.values()} == {
        "openlanguagedata/flores_plus", "csebuetnlp/xlsum", "google-research-datasets/paws-x", "cambridgeltl/xcopa",
        "facebook/belebele"}


@pytest.mark.django_db
def test_coverage_tells_full_data_from_samples_and_from_not_downloaded(tmp_path):
    folder = tmp_path / "belebele"
    folder.mkdir()
    (folder / "amh_Ethi.jsonl").write_bytes((get_benchmark("belebele").sample_root / "swh_Latn.jsonl").read_bytes())
    benchmark_source_set(name="belebele", path=str(folder))
    benchmarks, rows = benchmark_coverage()
    assert len(rows) == 121
    column = {benchmark.name: index for index, benchmark in enumerate(benchmarks)}
    cells = {row.language.code: row.cells for row in rows}
    assert cells["am"][column["belebele"]] == FULL
    assert cells["hi"][column["belebele"]] == SUPPORTED, "a configured folder replaces the samples"
    assert cells["sw"][column["flores-en-xx"]] == SAMPLE
    assert cells["hi"][column["flores-en-xx"]] == SUPPORTED
    assert cells["en"][column["flores-en-xx"]] == NONE, "English is FLORES's pivot"
    assert cells["qu"][column["xcopa"]] == SUPPORTED and cells["qu"][column["pawsx"]] == NONE
    assert cells["qu"][column["open-ended"]] == NONE


def test_the_coverage_page_lists_every_registry_language_for_staff(client, admin_user):
    client.force_login(admin_user)
    page = client.get(reverse("evaluation:coverage"))
    assert page.status_code == 200
    html = page.content.decode()
    assert html.count('<tr id="coverage-') == 121
    hindi = html[html.index('id="coverage-hi"'):].split("</tr>")[0]
    assert 'data-status="sample"' in hindi and 'data-status="supported"' in hindi
    assert "belebele" in html and "manage.py fetch_benchmarks" in html


def test_the_coverage_page_is_for_staff_only(client, annotator):
    assert client.get(reverse("evaluation:coverage")).status_code == 302  # to the sign-in page
    client.force_login(annotator)
    assert client.get(reverse("evaluation:coverage")).status_code == 403


def test_the_benchmark_list_keeps_its_contract_and_adds_what_the_release_covers(api, annotator):
    rows = {row["name"]: row for row in api(annotator).get("/api/v1/benchmarks/").json()}
    for row in rows.values():
        assert {"name", "task", "languages", "has_sample_data"} <= set(row)
    belebele = rows["belebele"]
    assert belebele["task"] == "classification" and belebele["has_sample_data"] is True
    assert belebele["languages"] == ["en", "fr", "hi", "sw", "ur"]
    assert belebele["hub_repo"] == "facebook/belebele" and "ur" in belebele["supported_languages"]
    assert rows["flores-en-xx"]["default_limit"] == 200 and rows["open-ended"]["supported_languages"] is None
