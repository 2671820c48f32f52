"""Proof of the seed's claim at CPU scale: the platform's own loop lowers the off-target rate and raises held-out
pair accuracy, both measured against the untrained model.

The task (tests/training/synthetic_crosslingual.py): English questions that ask for an answer in Swahili, French or
German; each item has one short real sentence in that language and one short real English sentence, both declared
in the requested language as an import requires. Two native annotators per language rank the on-target reply
first and flag the English one `wrong_language` (judgment_submit). From there on it is the platform's own path:
the preference and SFT exports (export_create + export_run, same split seed, so the held-out prompts are held out
of both stages), `training_run_create(kind="sft_dpo")` and `training_run_execute`, the functions the admin's queued
task calls, on a tiny random Llama (training/tiny_model.py) whose byte-level tokenizer is trained on the task's
texts and the platform's own.

Evaluation is the evaluation app's, on the held-out prompts (the preference export's test.jsonl), for the untrained
base and for the trained policy (base + SFT adapter merged + DPO adapter merged, evaluation.inference.load_model):
- the off-target rate of greedy generations (evaluation.inference.generate), judged by
  evaluation.metrics.langid.off_target_rate against the requested language: must fall by MIN_RATE_DROP, and at
  least half of the held-out answers must be measured on-target (so the rate cannot fall merely by answers
  becoming unmeasurable: the untrained model's byte salad mostly is);
- held-out pair accuracy: the share of pairs whose chosen reply has the higher log-likelihood
  (evaluation.inference.score_options, lm-evaluation-harness's `loglikelihood`): must rise by MIN_ACCURACY_GAIN.
  On- and off-target sentences have similar lengths in tokens (18 to 21 on average per language, English 17: if
  anything, length favours the rejected reply, hence the untrained model's ~0.2); with replies of very different
  lengths (the former
  version of this test: Tamil, Arabic, Chinese, Hindi and Russian word salads against English) a nearly uniform
  tiny model ranks pairs by length, and accuracy stayed at 0.382 although every margin moved.

No loss or exact figure is asserted: those move with library versions and thread counts. To check that it passes
for more than one lucky seed:

    CROSSFEED_IT_LEARNS_SEED=3 .venv/bin/pytest tests/training/test_it_learns.py -m slow -s
"""

from __future__ import annotations

import io
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

from annotation.models import JobStatus
from annotation.services.exports import export_create, export_folder, export_run
from annotation.services.imports import items_import
from evaluation.inference import ModelSpec, generate, load_model, render_prompt, score_options
from evaluation.metrics.langid import judge, off_target_rate
from tests.conftest import jsonl
from tests.training.synthetic_crosslingual import NAMES, SENTENCES, corpus, judge_everything, synthetic_items
from training.models import ModelVersion
from training.services.execution import training_run_execute
from training.services.registry import base_model_register, platform_texts
from training.services.runs import training_run_create

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SEED = int(os.environ.get("CROSSFEED_IT_LEARNS_SEED", "7"))
# 3 languages x 64 items = 192 pairs; a test fraction of 0.25 holds out ~48 prompts (16 per language).
ITEMS_PER_LANGUAGE = 64
TEST_FRACTION = 0.25
ANNOTATORS_PER_LANGUAGE = 2
# Hidden size 128, not the stock tiny model's 64: LoRA cannot touch the random lm_head (init std 0.02), so no logit
# can exceed ~0.02 x hidden_size in size; 128 leaves room for a greedy choice to be learnt. Still ~1 M weights.
HIDDEN_SIZE = 128
MAX_NEW_TOKENS = 32
# How much better the trained model must be. Measured on seed 7: off-target rate 1.00 -> 0.18 (on-target answers
# 0 -> 31 of 43), pair accuracy 0.21 -> 0.93. The bars leave room for other seeds and library versions, and are far
# above what an unchanged model could show by chance.
MIN_RATE_DROP = 0.3
MIN_ON_TARGET_SHARE = 0.5
MIN_ACCURACY_GAIN = 0.3
# LoRA on every projection (rank 16) and a learning rate of 5e-3 (10x the paper's DPO rate, which is for a 7B model
# over 60,000 steps). SFT 128 steps of 8 rows (~7 epochs of the ~149 training conversations), DPO 64 (~3.5 epochs):
# with 48 + 48 steps the trained model still mixed languages within an answer (off-target rate 0.55 on seed 7); with
# 192 + 96 it wrote whole sentences (0.20) but took twice as long. Warm-up 0: the preset's warm-up would keep the
# rate below its peak for the whole run. SFT without packing and with the loss on the reply only: on the whole
# sequence it would also learn the English prompts, raising the likelihood of English, which DPO is to push down.
PARAMS: dict[str, Any] = {
    "max_steps": 48, "learning_rate": 5e-3, "warmup_steps": 0, "per_device_train_batch_size": 8,
    "gradient_accumulation_steps": 1, "logging_steps": 1, "save_steps": 1000, "max_length": 128,
    "gradient_checkpointing": False, "lora_r": 16, "lora_alpha": 32,
    "lora_target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "sft": {"max_steps": 128, "packing": False, "assistant_only_loss": True},
    "dpo": {"max_steps": 64, "max_prompt_length": 64},
}


def evaluate(spec: ModelSpec, held_out: list[dict]) -> dict[str, Any]:
    """Off-target rate of greedy generations per requested language, summed, and held-out pair accuracy."""
    loaded = load_model(spec, device="cpu")
    prompts = [render_prompt(loaded, pair["prompt"]) for pair in held_out]
    outputs = generate(loaded, prompts, max_new_tokens=MAX_NEW_TOKENS, batch_size=16)
    rates = [off_target_rate([output.text for output, pair in zip(outputs, held_out, strict=True)
                              if pair["response_language"] == language], language) for language in NAMES]
    off, measured = sum(rate.off_target for rate in rates), sum(rate.measured for rate in rates)
    not_measurable = sum(rate.not_measurable for rate in rates)
    scores = score_options(loaded, prompts, [[pair["chosen"][-1]["content"], pair["rejected"][-1]["content"]]
                                             for pair in held_out], batch_size=16)
    return {
        "off_target_rate": off / measured if measured else None, "off_target": off, "on_target": measured - off,
        "not_measurable": not_measurable,
        "pair_accuracy": sum(chosen > rejected for chosen, rejected in scores) / len(held_out),
        "samples": [output.text for output in outputs[:3]],
    }


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def test_the_loop_lowers_off_target_rate_and_raises_pair_accuracy(campaign, admin_user, make_annotator, tmp_path):
    from training.tiny_model import build_tiny_model

    # The detector can judge the task: each sentence is measurable, on-target in its language, off-target as English.
    for language in NAMES:
        assert all(judge(text, language).off_target is False for text in SENTENCES[language])
        assert all(judge(text, language).off_target is True for text in SENTENCES["en"])

    items_import(campaign=campaign, source=io.BytesIO(jsonl(synthetic_items(random.Random(SEED),
                                                                           per_language=ITEMS_PER_LANGUAGE))))
    annotators = {language: [make_annotator(f"{language}-native-{n}", [language], ["en"])
                             for n in range(ANNOTATORS_PER_LANGUAGE)] for language in NAMES}
    judge_everything(campaign, annotators)
    exports = {}
    for kind in ("preference", "sft"):
        export = export_create(campaign=campaign, created_by=admin_user, kind=kind, test_fraction=TEST_FRACTION,
                               seed=SEED, enqueue=False)
        exports[kind] = export_run(export_id=export.id)
        assert exports[kind].status == JobStatus.SUCCEEDED, exports[kind].error

    model_dir = build_tiny_model(tmp_path / "tiny", [*platform_texts(), *corpus()], hidden_size=HIDDEN_SIZE)
    base_model = base_model_register(name="tiny", path=str(model_dir))
    run = training_run_create(kind="sft_dpo", base_model=base_model, export=exports["preference"],
                              sft_export=exports["sft"], params=PARAMS, seed=SEED, created_by=admin_user,
                              enqueue=False)
    run = training_run_execute(run_id=run.id, poll_seconds=0.5)
    assert run.status == JobStatus.SUCCEEDED, run.error + run.log_tail

    held_out = [json.loads(line) for line in
                (export_folder(exports["preference"]) / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    # ~48 expected (192 x 0.25); at least 30 so that the rates are statements about many prompts.
    assert len(held_out) >= 30 and {pair["split"] for pair in held_out} == {"test"}
    # Both exports split by prompt with the same seed: no held-out prompt reached either stage.
    trained_prompts = {json.loads(line)["prompt"][0]["content"] for line in
                       Path(run.resolved["dpo"]["train_file"]).read_text(encoding="utf-8").splitlines()}
    trained_prompts |= {json.loads(line)["messages"][0]["content"] for line in
                        Path(run.resolved["sft"]["train_file"]).read_text(encoding="utf-8").splitlines()}
    assert not trained_prompts & {pair["prompt"][0]["content"] for pair in held_out}

    sft, dpo = ModelVersion.objects.get(run=run, kind="sft"), ModelVersion.objects.get(run=run, kind="dpo")
    assert dpo.parent == sft
    before = evaluate(ModelSpec(base_model.path), held_out)
    after = evaluate(ModelSpec(base_model.path, adapters=(sft.adapter_path, dpo.adapter_path)), held_out)
    report = f"seed {SEED}, {len(held_out)} held-out prompts: untrained {before}; trained {after}"
    print(report)
    assert before["off_target_rate"] is not None and after["off_target_rate"] is not None, report
    assert after["off_target_rate"] <= before["off_target_rate"] - MIN_RATE_DROP, report
    # The rate must not fall merely because answers became unmeasurable: most held-out answers are on-target.
    assert after["on_target"] > before["on_target"], report
    assert after["on_target"] >= MIN_ON_TARGET_SHARE * len(held_out), report
    assert after["pair_accuracy"] >= before["pair_accuracy"] + MIN_ACCURACY_GAIN, report
