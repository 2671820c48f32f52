"""Proof that it learns: SFT then DPO on a synthetic cross-lingual preference set, through the admin's code path.

Every item asks, in English, for an answer in one of five languages with a script of its own (Tamil, Arabic,
Chinese, Hindi, Russian). Of its two responses, both declared in the requested language as an import requires, one
is written in that language's script and the other is off-target English (Latin script), the failure the paper
measures. Two native annotators per language rank the on-target response first and flag the other
`wrong_language`. From there on it is the platform's own path: the preference and SFT exports (same split seed,
so the held-out prompts are held out of both stages), `training_run_create(kind="sft_dpo")` and
`training_run_execute`, the functions the admin's queued task calls, on the tiny random Llama model.

The held-out pairs are the preference export's test.jsonl. On them the trained policy (base + merged SFT adapter
+ DPO adapter) must favour chosen over rejected by a wider log-probability margin than the untrained base does, for
most pairs; and DPO's own reward accuracy at the end of training must be well above chance. No exact loss is
asserted: those move with library versions and thread counts.

Texts are word salads: words of each script taken from the platform's demo items (which the tiny tokenizer was
trained on), drawn by a seeded generator, so that responses differ from one another and the only learnable signal
is the one we mean: the requested script versus English. To check that it passes for more than one lucky seed:

    CROSSFEED_IT_LEARNS_SEED=3 .venv/bin/pytest tests/training/test_it_learns.py -m slow
"""

from __future__ import annotations

import io
import json
import os
import random
import re
import unicodedata
import uuid
from pathlib import Path
from typing import Any

import pytest

from annotation.models import JobStatus
from annotation.services.demo import DATA
from annotation.services.exports import export_create, export_folder, export_run
from annotation.services.imports import items_import
from annotation.services.judgments import judgment_submit
from tests.conftest import jsonl
from training.models import ModelVersion, TrainingMetric
from training.services.execution import training_run_execute
from training.services.registry import base_model_register
from training.services.runs import training_run_create

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SEED = int(os.environ.get("CROSSFEED_IT_LEARNS_SEED", "7"))
# Response language -> the Unicode character-name prefix of its script (unicodedata.name("த") = "TAMIL LETTER TA").
SCRIPTS = {"ta": "TAMIL", "ar": "ARABIC", "zh-Hans": "CJK", "hi": "DEVANAGARI", "ru": "CYRILLIC"}
NAMES = {"ta": "Tamil", "ar": "Arabic", "zh-Hans": "Chinese", "hi": "Hindi", "ru": "Russian"}
# 5 languages x 64 items = 320 pairs; a test fraction of 0.2 leaves ~256 to train on and ~64 held out.
ITEMS_PER_LANGUAGE = 64
TEST_FRACTION = 0.2
ANNOTATORS_PER_LANGUAGE = 2
# 48 steps x 8 pairs = 384 pairs, 1.5 epochs of the ~256 training pairs; SFT the same on ~256 conversations.
# The paper's learning rates (SFT 1e-4, DPO 5e-4) are for a 7B model over 300,000 / 60,000 steps. Here, in 48 steps,
# they move the mean held-out margin by 0.8 nats and improve 87% of the pairs (seed 7), too close to the bar to be
# reliable; both stages use 5e-3 (10x the DPO rate): 2.5-2.8 nats, 90-96% over seeds 3, 5, 7, 11. Margins cannot move
# much more in a model like this: LoRA cannot touch the random lm_head (init std 0.02, so a row has norm
# ~0.02 x sqrt(64) = 0.16) and the final RMSNorm leaves the hidden state a norm of ~sqrt(64) = 8, so no logit
# exceeds ~0.16 x 8 = 1.3 in size.
# Warm-up 0: the preset's 100 warm-up steps would keep the rate below its peak for the whole run. SFT without
# packing, so each row is one conversation as in DPO, and with the loss on the reply only: on the whole sequence it
# would also learn the English prompts, raising the likelihood of English, which DPO is to push down. No gradient
# checkpointing (nothing to save on a 2-layer model). Prompts stay under ~30 tokens and whole rows under ~100
# (asserted when scoring), so max_prompt_length 64 and max_length 128 cut nothing.
PARAMS: dict[str, Any] = {
    "max_steps": 48, "learning_rate": 5e-3, "warmup_steps": 0, "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 1, "logging_steps": 1, "save_steps": 1000, "max_length": 128,
    "gradient_checkpointing": False,
    "sft": {"packing": False, "assistant_only_loss": True},
    "dpo": {"max_prompt_length": 64},
}
# DPO's rewards/accuracies is logged per step (8 pairs); the mean of the last 8 logs covers 64 pairs.
LAST_LOGS = 8
MIN_FRACTION_IMPROVED = 0.8
MIN_REWARD_ACCURACY = 0.75


# --- synthetic data ---------------------------------------------------------------------------------------------


def script_words() -> dict[str, list[str]]:
    """Words of each script (and English) found in the demo items, sorted so that the pools are reproducible."""
    texts: dict[str, list[str]] = {"en": []}
    with (DATA / "demo_items.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            item = json.loads(line)
            texts["en"].append((item.get("pivot") or {}).get("text", ""))
            for response in item["responses"]:
                texts.setdefault(response["language"], []).append(response["text"])
    pools = {}
    for language, prefix in {**SCRIPTS, "en": "LATIN"}.items():
        words = set()
        for text in texts[language]:
            for word in re.split(r"[\s,.;:!?()\"«»،؟，。、！？；：]+", text):
                if language == "zh-Hans":  # no spaces between Chinese words: take two-character pieces
                    words.update(word[i: i + 2] for i in range(0, len(word) - 1, 2))
                else:
                    words.add(word)
        # Only words made entirely of the script's letters: the demo texts quote code, numbers and other languages.
        pools[language] = sorted(w for w in words if w and all(unicodedata.name(c, "").startswith(prefix) for c in w))
    return pools


def synthetic_items(rng: random.Random) -> list[dict]:
    """Items in the import format: an English instruction naming the language, one on-target and one English reply."""
    pools = script_words()
    items = []
    for language in SCRIPTS:
        separator = "" if language == "zh-Hans" else " "
        # Tamil words run to ~7 tokens each in the tiny tokenizer, Chinese pieces to ~2: fewer words for Tamil.
        most = 5 if language == "ta" else 8
        for number in range(ITEMS_PER_LANGUAGE):
            question = " ".join(rng.sample(pools["en"], rng.randint(3, 6)))
            on_target = separator.join(rng.choices(pools[language], k=rng.randint(3, most)))
            english = " ".join(rng.choices(pools["en"], k=rng.randint(4, 9)))
            responses = [{"text": on_target, "language": language, "model": "on-target"},
                         {"text": english, "language": language, "model": "off-target"}]
            rng.shuffle(responses)  # the position of the good answer carries no signal
            items.append({
                "external_id": f"learns-{language}-{number:03d}",
                "prompt": {"text": f"Answer in {NAMES[language]}: {question.capitalize()}?", "language": "en"},
                "responses": responses,
            })
    return items


def judge_everything(campaign, annotators: dict[str, list]) -> None:
    """Every annotator of the item's language ranks the on-target response first and flags the English one."""
    for item in campaign.items.prefetch_related("responses"):
        by_model = {response.model_name: response.id for response in item.responses.all()}
        ranks = {str(by_model["on-target"]): 1, str(by_model["off-target"]): 2}
        flags = {str(by_model["off-target"]): ["wrong_language"]}
        for user in annotators[item.response_language_id]:
            judgment_submit(annotator=user, item_id=item.id, ranks=ranks, flags=flags,
                            idempotency_key=uuid.uuid4().hex)


# --- log-probabilities --------------------------------------------------------------------------------------------


def completion_logprob(model, tokenizer, prompt: list[dict], completion: list[dict]) -> float:
    """Sum of the completion's token log-probabilities, tokenized as TRL's DPOTrainer does for conversational rows:
    the prompt rendered with add_generation_prompt=True, the completion being what prompt + reply adds to it (the
    reply's text and the EOS token the chat template puts after it)."""
    import torch

    prompt_ids = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=True, return_dict=False)
    full_ids = tokenizer.apply_chat_template(prompt + completion, tokenize=True, return_dict=False)
    assert full_ids[: len(prompt_ids)] == prompt_ids, "the chat template must render the prompt as a prefix"
    # Training cut nothing of rows like these; scoring must not see more than training did.
    assert len(prompt_ids) <= PARAMS["dpo"]["max_prompt_length"] and len(full_ids) <= PARAMS["max_length"]
    ids = torch.tensor([full_ids])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1].float()
    # Position t predicts token t + 1: the completion's tokens are predicted from len(prompt_ids) - 1 onwards.
    logprobs = torch.log_softmax(logits, dim=-1).gather(1, ids[0, 1:, None])[:, 0]
    return float(logprobs[len(prompt_ids) - 1:].sum())


def margins(model, tokenizer, pairs: list[dict]) -> list[float]:
    return [completion_logprob(model, tokenizer, pair["prompt"], pair["chosen"])
            - completion_logprob(model, tokenizer, pair["prompt"], pair["rejected"]) for pair in pairs]


def load_models(base_path: str, sft: ModelVersion, dpo: ModelVersion):
    """The untrained base, and the trained policy built as dpo.py builds it: SFT merged in, DPO adapter on top."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(base_path).eval()
    merged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), sft.adapter_path)
    policy = PeftModel.from_pretrained(merged.merge_and_unload(), dpo.adapter_path).eval()
    return AutoTokenizer.from_pretrained(base_path), base, policy


# --- the test ---------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_sft_dpo_prefers_the_requested_language_on_held_out_pairs(campaign, admin_user, make_annotator,
                                                                  tiny_model_dir):
    rng = random.Random(SEED)
    items_import(campaign=campaign, source=io.BytesIO(jsonl(synthetic_items(rng))))
    annotators = {language: [make_annotator(f"{language}-native-{n}", [language], ["en"])
                             for n in range(ANNOTATORS_PER_LANGUAGE)] for language in SCRIPTS}
    judge_everything(campaign, annotators)
    exports = {}
    for kind in ("preference", "sft"):
        export = export_create(campaign=campaign, created_by=admin_user, kind=kind, test_fraction=TEST_FRACTION,
                               seed=SEED, enqueue=False)
        exports[kind] = export_run(export_id=export.id)
        assert exports[kind].status == JobStatus.SUCCEEDED, exports[kind].error

    base_model = base_model_register(name="tiny", path=str(tiny_model_dir))
    run = training_run_create(kind="sft_dpo", base_model=base_model, export=exports["preference"],
                              sft_export=exports["sft"], params=PARAMS, seed=SEED, created_by=admin_user,
                              enqueue=False)
    run = training_run_execute(run_id=run.id, poll_seconds=0.5)
    assert run.status == JobStatus.SUCCEEDED, run.error + run.log_tail

    held_out = [json.loads(line) for line in
                (export_folder(exports["preference"]) / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    # ~64 expected (320 x 0.2); at least 40 so that "most pairs" is a statement about many pairs.
    assert len(held_out) >= 40 and {pair["split"] for pair in held_out} == {"test"}
    # Both exports split by prompt with the same seed: no held-out prompt reached either stage.
    trained_prompts = {json.loads(line)["prompt"][0]["content"] for line in
                       Path(run.resolved["dpo"]["train_file"]).read_text(encoding="utf-8").splitlines()}
    trained_prompts |= {json.loads(line)["messages"][0]["content"] for line in
                        Path(run.resolved["sft"]["train_file"]).read_text(encoding="utf-8").splitlines()}
    assert not trained_prompts & {pair["prompt"][0]["content"] for pair in held_out}

    sft, dpo = ModelVersion.objects.get(run=run, kind="sft"), ModelVersion.objects.get(run=run, kind="dpo")
    assert dpo.parent == sft
    tokenizer, base, policy = load_models(base_model.path, sft, dpo)
    before, after = margins(base, tokenizer, held_out), margins(policy, tokenizer, held_out)
    improved = sum(trained > untrained for trained, untrained in zip(after, before, strict=True)) / len(held_out)

    logged = [metric.values["rewards/accuracies"] for metric in
              TrainingMetric.objects.filter(run=run, stage="dpo", event="log").order_by("line")
              if "rewards/accuracies" in metric.values]
    reward_accuracy = sum(logged[-LAST_LOGS:]) / len(logged[-LAST_LOGS:])
    report = (f"seed {SEED}: {len(held_out)} held-out pairs, trained margin > base margin for {improved:.2f}; "
              f"mean margin {sum(before) / len(before):.1f} -> {sum(after) / len(after):.1f}; "
              f"DPO reward accuracy over the last {LAST_LOGS} logs {reward_accuracy:.2f}")
    print(report)
    assert improved >= MIN_FRACTION_IMPROVED, report
    assert reward_accuracy >= MIN_REWARD_ACCURACY, report
