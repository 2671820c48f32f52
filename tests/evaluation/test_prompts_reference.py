"""Prompts that say what they score: XCOPA and PAWS-X as lm-evaluation-harness asks them, the seed paper's format as
an option, and open-ended prompts that name the language their answer is scored in.

lm-eval is not a dependency (it does not install with our pins: its pytablewriter needs python-dateutil < 3), so its
task definitions are copied here by hand from lm_eval/tasks at commit 4e7e0d47 (2026-08-21, the same files as the
0.4.13 release): the XCOPA connector words of xcopa/utils.py, and the PAWS-X `doc_to_choice` templates of
paws-x/paws_<lang>.yaml verbatim, rendered with Jinja and `ast.literal_eval` as lm-eval renders them. The requests
are built from the raw sample files, not from our loaders, and compared with what Crossfeed scores.
"""

from __future__ import annotations

import ast
import csv
import json
import math
import re

import pytest
import torch
import yaml
from jinja2 import BaseLoader, Environment, StrictUndefined

from evaluation.benchmarks import get_benchmark
from evaluation.inference import Prompt, benchmark_prompt, score_options

# lm_eval/tasks/xcopa/utils.py: doc_to_text_<lang> connectors, keyed by XCOPA's file codes.
LM_EVAL_XCOPA_CONNECTORS = {
    "et": {"cause": "sest", "effect": "seetõttu"}, "ht": {"cause": "poukisa", "effect": "donk sa"},
    "it": {"cause": "perché", "effect": "quindi"}, "id": {"cause": "karena", "effect": "maka"},
    "qu": {"cause": "imataq", "effect": "chaymi"}, "sw": {"cause": "kwa sababu", "effect": "kwa hiyo"},
    "zh": {"cause": "因为", "effect": "所以"}, "ta": {"cause": "காரணமாக", "effect": "எனவே"},
    "th": {"cause": "เพราะ", "effect": "ดังนั้น"}, "tr": {"cause": "çünkü", "effect": "bu yüzden"},
    "vi": {"cause": "bởi vì", "effect": "vì vậy"},
}  # fmt: skip

# lm_eval/tasks/paws-x/paws_<lang>.yaml, the doc_to_choice lines verbatim (YAML quoting and line folds included).
LM_EVAL_PAWSX_YAML = """
en: '{{[sentence1+", right? No, "+sentence2, sentence1+", right? Yes, "+sentence2]}}'
de: '{{[sentence1+", richtig? Nein, "+sentence2, sentence1+", richtig? Ja,
  "+sentence2]}}'
es: '{{[sentence1+", verdad? No, "+sentence2, sentence1+", verdad? Sí,
  "+sentence2]}}'
fr: '{{[sentence1+", n''est-ce pas? Non, "+sentence2, sentence1+", n''est-ce
  pas? Oui, "+sentence2]}}'
ja: '{{[sentence1+", ですね? いいえ, "+sentence2, sentence1+", ですね? はい, "+sentence2]}}'
ko: '{{[sentence1+", 맞죠? 아니요, "+sentence2, sentence1+", 맞죠? 예, "+sentence2]}}'
zh: '{{[sentence1+", 对吧? 不是, "+sentence2, sentence1+", 对吧? 是, "+sentence2]}}'
"""
# paws_en/de/es/fr.yaml have `process_docs: !function utils.process_docs_paraphrases`; ja, ko, zh have none.
LM_EVAL_PAWSX_PROCESSED = {"en", "de", "es", "fr"}
# lm_eval/utils.py's environment: it renders text for a model, not HTML, so nothing is escaped.
JINJA = Environment(loader=BaseLoader, undefined=StrictUndefined, keep_trailing_newline=True)  # noqa: S701


def lm_eval_xcopa(doc: dict, code: str) -> tuple[str, list[str]]:
    """(context, continuations) of lm-eval's xcopa_<code>: doc_to_text, then " " + each doc_to_choice."""
    context = doc["premise"].strip()[:-1] + f" {LM_EVAL_XCOPA_CONNECTORS[code][doc['question']]}"
    choices = [choice[0].lower() + choice[1:] for choice in (doc["choice1"], doc["choice2"])]
    return context, [" " + choice for choice in choices]  # default target_delimiter " "


def lm_eval_detokenize(string: str) -> str:  # paws-x/utils.py general_detokenize
    string = string.replace(" n't", "n't")
    string = string.replace(" )", ")")
    string = string.replace("( ", "(")
    string = string.replace('" ', '"')
    string = string.replace(' "', '"')
    return re.sub(r" (['.,])", r"\1", string)


def lm_eval_pawsx(doc: dict, code: str) -> tuple[str, list[str]]:
    """(context, continuations) of lm-eval's paws_<code>: an empty doc_to_text, target_delimiter ""."""
    doc = dict(doc)
    if code in LM_EVAL_PAWSX_PROCESSED:  # paws-x/utils.py process_docs_paraphrases
        doc["sentence1"] = lm_eval_detokenize(doc["sentence1"]).strip()
        doc["sentence2"] = lm_eval_detokenize(doc["sentence2"]).strip()
        if doc["sentence1"].endswith((".", ",", ";")):
            doc["sentence1"] = doc["sentence1"][:-1]
        doc["sentence2"] = doc["sentence2"][0].lower() + doc["sentence2"][1:]
    template = yaml.safe_load(LM_EVAL_PAWSX_YAML)[code]
    return "", ast.literal_eval(JINJA.from_string(template).render(**doc))


def xcopa_docs(code: str) -> list[dict]:
    root = get_benchmark("xcopa").sample_root
    lines = (root / code / f"test.{code}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def pawsx_docs(code: str) -> list[dict]:
    path = get_benchmark("pawsx").sample_root / code / "test_2k.tsv"
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))


XCOPA_SAMPLES = {"it": "it", "sw": "sw", "ta": "ta", "zh": "zh-Hans"}  # file code: our code
PAWSX_SAMPLES = {"en": "en", "fr": "fr", "ja": "ja", "zh": "zh-Hans"}


@pytest.mark.parametrize("code", sorted(XCOPA_SAMPLES))
def test_xcopa_asks_what_lm_eval_asks_on_the_sample_sets(code):
    benchmark = get_benchmark("xcopa")
    examples = benchmark.load(benchmark.sample_root, XCOPA_SAMPLES[code])
    docs = xcopa_docs(code)
    assert len(examples) == len(docs) == 4
    for example, doc in zip(examples, docs, strict=True):
        context, continuations = lm_eval_xcopa(doc, code)
        assert benchmark.plain_context(example) == context
        assert list(example.options) == continuations and example.label == doc["label"]


@pytest.mark.parametrize("code", sorted(PAWSX_SAMPLES))
def test_pawsx_asks_what_lm_eval_asks_on_the_sample_sets(code):
    benchmark = get_benchmark("pawsx")
    examples = benchmark.load(benchmark.sample_root, PAWSX_SAMPLES[code])
    docs = pawsx_docs(code)
    assert len(examples) == len(docs) == 4
    for example, doc in zip(examples, docs, strict=True):
        context, continuations = lm_eval_pawsx(doc, code)
        assert benchmark.plain_context(example) == context == ""
        assert list(example.options) == continuations and example.label == int(doc["label"])


def test_the_lm_eval_requests_read_as_lm_eval_writes_them():
    """Two requests written out in full, so that a reader sees what "lm-eval's template" means."""
    copa = get_benchmark("xcopa").load(get_benchmark("xcopa").sample_root, "sw")[1]
    assert get_benchmark("xcopa").plain_context(copa) == "Ardhi ilikuwa na unyevu kwa sababu"
    assert copa.options == (" mvua ilinyesha usiku.", " jua lilikuwa linawaka.")
    paws = get_benchmark("pawsx").load(get_benchmark("pawsx").sample_root, "en")[1]
    assert paws.options == ("Anna sold her bicycle to Marco last week, right? No, marco sold his bicycle to Anna "
                            "last week.",
                            "Anna sold her bicycle to Marco last week, right? Yes, marco sold his bicycle to Anna "
                            "last week.")


def lm_eval_loglikelihood(loaded, context: str, continuation: str) -> float:
    """lm-eval's HFLM scoring of one request, written out: lm_eval/api/model.py `loglikelihood` and `_encode_pair`
    (tokenizer defaults, as tok_encode uses them), then `_loglikelihood_tokens` on one unpadded sequence."""
    tokenizer = loaded.tokenizer
    if context == "":
        continuation_enc = tokenizer.encode(continuation, add_special_tokens=False)
        prefix = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        context_enc = [prefix]
    else:
        spaces = len(context) - len(context.rstrip())
        if spaces:
            continuation, context = context[-spaces:] + continuation, context[:-spaces]
        whole = tokenizer.encode(context + continuation)
        context_enc = tokenizer.encode(context)
        continuation_enc = whole[len(context_enc):]
    tokens = (context_enc + continuation_enc)[-(loaded.context_length + 1):][:-1]
    with torch.no_grad():
        logits = loaded.model(torch.tensor([tokens])).logits[0].double()
    log_probs = torch.log_softmax(logits, dim=-1)[-len(continuation_enc):]
    return float(sum(log_probs[i, token] for i, token in enumerate(continuation_enc)))


@pytest.mark.parametrize("name, language", [("xcopa", "ta"), ("xcopa", "zh-Hans"), ("pawsx", "fr"), ("pawsx", "ja")])
def test_scores_are_lm_evals_loglikelihoods(tiny, name, language):
    benchmark = get_benchmark(name)
    examples = benchmark.load(benchmark.sample_root, language)
    prompts = [benchmark_prompt(tiny, benchmark, example) for example in examples]
    assert all(isinstance(prompt, Prompt) and not prompt.templated for prompt in prompts), "no chat template"
    scores = score_options(tiny, prompts, [example.options for example in examples], batch_size=3)
    for example, prompt, got in zip(examples, prompts, scores, strict=True):
        expected = [lm_eval_loglikelihood(tiny, prompt.text, option) for option in example.options]
        assert got == pytest.approx(expected, abs=1e-4)
        assert all(math.isfinite(value) for value in got)


def test_the_seed_format_lists_the_options_and_scores_answer_words_after_the_template(tiny):
    xcopa, pawsx = get_benchmark("xcopa-seed"), get_benchmark("pawsx-seed")
    copa = xcopa.load(xcopa.sample_root, "sw")[2]
    prompt = benchmark_prompt(tiny, xcopa, copa)
    assert prompt.templated and prompt.text.startswith("<s><|user|>\nPremise: Msichana alikuwa na njaa.\n")
    assert "-A: Alilala mapema. -B: Alikula mkate." in prompt.text and prompt.text.endswith("<|assistant|>\n")
    assert copa.options == ("A", "B") and copa.label == 1
    paws = pawsx.load(pawsx.sample_root, "ja")[0]
    assert paws.options == ("no", "yes") and "Sentence1: " in pawsx.messages(paws)[0]["content"]
    [scores] = score_options(tiny, [prompt], [copa.options])
    assert len(scores) == 2 and all(math.isfinite(value) for value in scores)


def test_a_seed_format_answer_is_scored_as_the_template_writes_an_answer(tiny_model_dir):
    from evaluation.inference import ModelSpec, load_model

    # The Question/Answer template trains an answer as "Answer:" + " " + text: " B" is scored, not "B".
    loaded = load_model(ModelSpec(str(tiny_model_dir), chat_template_name="question_answer"), device="cpu")
    benchmark = get_benchmark("xcopa-seed")
    copa = benchmark.load(benchmark.sample_root, "sw")[2]
    prompt = benchmark_prompt(loaded, benchmark, copa)
    assert prompt.text.startswith("Question: Premise: ") and prompt.text.endswith("Answer:")
    assert prompt.answer_prefix == " "
    [scores] = score_options(loaded, [prompt], [copa.options])
    ids = loaded.tokenizer(prompt.text, add_special_tokens=False)["input_ids"]
    answer = loaded.tokenizer(" B", add_special_tokens=False)["input_ids"]
    with torch.no_grad():
        log_probs = torch.log_softmax(loaded.model(torch.tensor([ids + answer])).logits[0].double(), dim=-1)
    by_hand = sum(float(log_probs[len(ids) + i - 1, token]) for i, token in enumerate(answer))
    assert scores[1] == pytest.approx(by_hand, abs=1e-4)


@pytest.mark.parametrize("response_language, named", [(None, "Swahili"), ("ta", "Tamil")])
def test_an_open_ended_prompt_names_the_language_its_answer_is_scored_in(tmp_path, response_language, named):
    line = {"id": "x", "instruction": "Eleza kwa nini anga ni la buluu."}
    if response_language:
        line["response_language"] = response_language
    (tmp_path / "sw.jsonl").write_text(json.dumps(line, ensure_ascii=False) + "\n", encoding="utf-8")
    benchmark = get_benchmark("open-ended")
    [example] = benchmark.load(tmp_path, "sw")
    [message] = benchmark.messages(example)
    assert message["content"].startswith("Eleza kwa nini anga ni la buluu.")
    assert message["content"].endswith(f"Write your answer in {named}.")
    assert example.expected_language == (response_language or "sw")
