"""Rounds built by hand for the rounds, lineage and page tests: campaigns with imported items and real judgments,
exports, succeeded training runs with model versions, evaluation results, next-round generation jobs. No model is
trained: a version's adapter folder holds only adapter_config.json, which is all job creation checks (tests that
execute a job make real adapters: make_lora_adapter)."""

from __future__ import annotations

import io
import json
from pathlib import Path

from django.utils import timezone

from annotation.models import Campaign, Export, Item, JobStatus
from annotation.services.campaigns import campaign_create
from annotation.services.imports import items_import
from annotation.services.judgments import judgment_submit
from evaluation.models import EvaluationResult, EvaluationRun
from generation.models import GenerationJob
from tests.conftest import jsonl, new_key, ranks_for
from training.models import BaseModel, ModelVersion, TrainingRun


def plain_base_model(folder: Path, name: str = "plain") -> BaseModel:
    """A base model row whose folder passes the checks but is never loaded."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text("{}", encoding="utf-8")
    return BaseModel.objects.create(name=name, path=str(folder))


def adapter_folder(folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text("{}", encoding="utf-8")
    return str(folder)


def make_lora_adapter(model_dir: Path, folder: Path, *, seed: int = 1) -> str:
    """A real LoRA adapter of the tiny model with non-zero weights (its answers differ from the bare model's)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(model, config).save_pretrained(folder)
    return str(folder)


def campaign_with_items(name: str, external_ids: list[str], *, response_lang: str = "ta",
                        responses: list[list[str]] | None = None, created_by=None) -> Campaign:
    campaign = campaign_create(name=name, created_by=created_by, overlap=2)
    lines = []
    for index, external_id in enumerate(external_ids):
        texts = responses[index] if responses else [f"{external_id} answer {n}" for n in range(2)]
        lines.append({"external_id": external_id, "prompt": {"text": f"Eleza {external_id}.", "language": "sw"},
                      "responses": [{"text": text, "language": response_lang, "model": f"m{n}"}
                                    for n, text in enumerate(texts)]})
    items_import(campaign=campaign, source=io.BytesIO(jsonl(lines)))
    return campaign


def judge_all(campaign: Campaign, annotators, *, wrong_language: dict[str, list[int]] | None = None,
              prefix: str = "") -> int:
    """Every annotator ranks every item (whose external_id starts with `prefix`) in response order; wrong_language:
    item external_id -> the positions of its responses each annotator flags "wrong_language"."""
    count = 0
    for item in Item.objects.filter(campaign=campaign, external_id__startswith=prefix).order_by("id"):
        ids = list(item.responses.order_by("position").values_list("id", flat=True))
        flagged = (wrong_language or {}).get(item.external_id, [])
        flags = {str(ids[position]): ["wrong_language"] for position in flagged}
        for annotator in annotators:
            judgment_submit(annotator=annotator, item_id=item.id, ranks=ranks_for(item), flags=flags,
                            idempotency_key=new_key())
            count += 1
    return count


def succeeded_export(campaign: Campaign) -> Export:
    return Export.objects.create(campaign=campaign, status=JobStatus.SUCCEEDED, rows=4, finished_at=timezone.now())


def succeeded_run(*, base: BaseModel, export: Export, name: str, adapters: Path, parent: ModelVersion | None = None,
                  adapter: str | None = None) -> tuple[TrainingRun, ModelVersion]:
    """A DPO run that succeeded and registered its version (trained on top of `parent`, when given)."""
    run = TrainingRun.objects.create(kind="dpo", base_model=base, export=export, start_version=parent,
                                     status=JobStatus.SUCCEEDED, step=4, total_steps=4, finished_at=timezone.now())
    version = ModelVersion.objects.create(name=name, base_model=base, parent=parent, run=run, kind="dpo",
                                          adapter_path=adapter or adapter_folder(adapters / name))
    return run, version


def evaluation(*, base: BaseModel, version: ModelVersion | None, scores: dict[str, float],
               run: TrainingRun | None = None, benchmark: str = "xcopa") -> EvaluationRun:
    evaluation_run = EvaluationRun.objects.create(base_model=base, model_version=version, training_run=run,
                                                  benchmarks=[benchmark], status=JobStatus.SUCCEEDED,
                                                  finished_at=timezone.now())
    for language, value in scores.items():
        EvaluationResult.objects.create(run=evaluation_run, benchmark=benchmark, language=language,
                                        metric="accuracy", value=value, n=4)
    return evaluation_run


def next_round_job(*, run: TrainingRun, campaign: Campaign | None, status: str = JobStatus.SUCCEEDED,
                   name: str = "") -> GenerationJob:
    """A next-round job as the worker leaves it (no prompts file: these tests never execute it)."""
    return GenerationJob.objects.create(training_run=run, campaign=campaign, status=status,
                                        campaign_name=name or (campaign.name if campaign else ""),
                                        generators=[{"model_version": 1, "label": "v"}],
                                        finished_at=timezone.now() if status == JobStatus.SUCCEEDED else None)


def detected(campaign: Campaign, languages: list[str]) -> None:
    """Give the campaign's responses, in order, the detected languages a generation job would have recorded."""
    responses = [r for item in Item.objects.filter(campaign=campaign).order_by("id")
                 for r in item.responses.order_by("position")]
    for response, language in zip(responses, languages, strict=False):
        response.detected_language = language
        response.detected_confidence = 0.9
        response.save(update_fields=["detected_language", "detected_confidence"])


def payload(response) -> dict:
    return json.loads(response.content)
