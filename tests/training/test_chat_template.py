"""One chat template: training and evaluation render the same prompt from the same messages, the manifest records
the template, and a base model without a template of its own (Llama-2-7b-hf, say) trains with the seed's
"Question: … Answer:" format instead of failing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from training.scripts.chat_templates import (
    NAMED_TEMPLATES,
    TEMPLATE_NAMES,
    adds_bos,
    resolve_chat_template,
    use_chat_template,
)
from training.tiny_model import build_tiny_model

REPO = Path(__file__).resolve().parents[2]
TEXTS = ["Habari ya asubuhi, rafiki yangu.", "வணக்கம், நீங்கள் எப்படி இருக்கிறீர்கள்?", "你好，今天天气很好。",
         "Explain why the sky is blue.", "Question: Answer:"]
CUSTOM = ("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
          "{% if add_generation_prompt %}[assistant]{% endif %}")
MESSAGES = [{"role": "user", "content": "Eleza kwa nini anga ni la buluu."}]


def without_template(folder: Path) -> Path:
    """A saved model whose tokenizer has no chat template, like meta-llama/Llama-2-7b-hf."""
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    config_path = folder / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config.pop("chat_template", None)
    config_path.write_text(json.dumps(config), encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("templates")
    return {"with": build_tiny_model(root / "with", TEXTS * 5, seed=0),
            "without": without_template(build_tiny_model(root / "without", TEXTS * 5, seed=0))}


def test_the_names_are_the_same_in_the_registry_and_the_scripts():
    from training.models import ChatTemplateName

    assert tuple(ChatTemplateName.values) == TEMPLATE_NAMES


@pytest.mark.parametrize(
    "model, name, custom, source",
    [("with", "auto", None, "tokenizer"), ("without", "auto", None, "question_answer"),
     ("with", "alpaca", None, "alpaca"), ("without", "question_answer", CUSTOM, "override")],
)
def test_training_and_evaluation_render_the_same_prompt(models, tmp_path, model, name, custom, source):
    from evaluation.inference import ModelSpec, load_model, render_prompt
    from training.scripts.common import SFTRunConfig, config_from_dict, load_tokenizer

    train_file = tmp_path / "sft.jsonl"
    train_file.write_text(json.dumps({"messages": MESSAGES}) + "\n", encoding="utf-8")
    config = config_from_dict({"model_name_or_path": str(models[model]), "output_dir": str(tmp_path / "out"),
                               "train_file": str(train_file), "chat_template_name": name, "chat_template": custom},
                              SFTRunConfig, check_environment=False)
    tokenizer, template = load_tokenizer(config)
    trained_on = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    loaded = load_model(ModelSpec(str(models[model]), chat_template=custom or "", chat_template_name=name),
                        device="cpu")
    assert render_prompt(loaded, MESSAGES) == trained_on
    assert template.source == source == loaded.chat_template.source
    expected_start = {"tokenizer": "<s><|user|>\n", "question_answer": "Question: Eleza", "alpaca": "Below is an",
                      "override": "[user] Eleza"}[source]
    assert trained_on.startswith(expected_start)


@pytest.mark.parametrize("name", sorted(NAMED_TEMPLATES))
def test_a_named_template_keeps_the_prompt_a_prefix_and_trains_the_answer_and_its_eos(models, name):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(models["without"])
    use_chat_template(tokenizer, name=name)
    reply = [{"role": "assistant", "content": "Kwa sababu ya mwanga."}]
    prompt_ids = tokenizer.apply_chat_template(MESSAGES, add_generation_prompt=True, return_dict=True)["input_ids"]
    full = tokenizer.apply_chat_template(MESSAGES + reply, return_dict=True, return_assistant_tokens_mask=True)
    # TRL's DPO splits prompt and answer at the longest common prefix of their token ids: it must be the prompt.
    assert full["input_ids"][:len(prompt_ids)] == prompt_ids
    trained = [token for token, mask in zip(full["input_ids"], full["assistant_masks"], strict=True) if mask]
    assert tokenizer.decode(trained).strip() == "Kwa sababu ya mwanga.</s>"


def test_a_named_template_writes_bos_only_where_the_tokenizer_adds_it(models):
    from tokenizers import processors
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(models["without"])
    assert not adds_bos(tokenizer)
    assert resolve_chat_template(tokenizer).text == NAMED_TEMPLATES["question_answer"]
    # As a Llama tokenizer does: "<s>" before every text.
    tokenizer._tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    assert adds_bos(tokenizer)
    assert resolve_chat_template(tokenizer).text == "{{ bos_token }}" + NAMED_TEMPLATES["question_answer"]


def run_script(stage: str, config: dict[str, Any], folder: Path) -> subprocess.CompletedProcess:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stage}.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
    env = {**os.environ, "HF_HOME": str(folder / "hf"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    script = REPO / "training" / "scripts" / f"{stage}.py"
    return subprocess.run([sys.executable, str(script), "--config", str(path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_a_model_without_a_template_trains_sft_then_dpo_and_the_manifests_record_the_template(models, tmp_path):
    rows = [{"messages": [{"role": "user", "content": TEXTS[i % 4]}, {"role": "assistant", "content": TEXTS[3]}]}
            for i in range(4)]
    pairs = [{"prompt": [{"role": "user", "content": TEXTS[i % 4]}],
              "chosen": [{"role": "assistant", "content": TEXTS[0]}],
              "rejected": [{"role": "assistant", "content": TEXTS[2]}]} for i in range(4)]
    sft_file, dpo_file = tmp_path / "sft.jsonl", tmp_path / "pairs.jsonl"
    sft_file.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    dpo_file.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in pairs), encoding="utf-8")
    common = {"model_name_or_path": str(models["without"]), "max_steps": 2, "save_steps": 2, "logging_steps": 1,
              "per_device_train_batch_size": 2, "max_length": 64, "gradient_checkpointing": False, "seed": 0}

    sft = run_script("sft", {**common, "output_dir": str(tmp_path / "sft"), "train_file": str(sft_file)},
                     tmp_path / "sft")
    assert sft.returncode == 0, sft.stderr[-3000:]
    dpo = run_script("dpo", {**common, "output_dir": str(tmp_path / "dpo"), "train_file": str(dpo_file),
                             "adapter_path": str(tmp_path / "sft" / "adapter")}, tmp_path / "dpo")
    assert dpo.returncode == 0, dpo.stderr[-3000:]
    assert "not a prefix of the tokenized prompt+completion" not in dpo.stderr

    for stage in ("sft", "dpo"):
        manifest = json.loads((tmp_path / stage / "manifest.json").read_text(encoding="utf-8"))
        recorded = manifest["chat_template"]
        assert recorded["source"] == "question_answer" and recorded["text"] == NAMED_TEMPLATES["question_answer"]
        assert len(recorded["sha256"]) == 64
        # The adapter's tokenizer carries it too, for anyone loading the adapter without Crossfeed.
        saved = (tmp_path / stage / "adapter" / "chat_template.jinja").read_text(encoding="utf-8")
        assert saved == recorded["text"]


@pytest.mark.django_db
def test_a_run_and_the_evaluation_of_its_version_use_the_base_models_template(models, tmp_path, settings):
    from evaluation.models import EvaluationRun
    from evaluation.services.runs import model_spec
    from training.models import ModelVersion
    from training.services.registry import base_model_register
    from training.services.runs import training_run_create, uploads_root

    settings.MEDIA_ROOT = tmp_path / "media"
    base = base_model_register(name="no-template", path=str(models["without"]), chat_template_name="alpaca")
    uploads_root().mkdir(parents=True)
    upload = uploads_root() / "sft.jsonl"
    upload.write_text(json.dumps({"messages": MESSAGES + [{"role": "assistant", "content": "Nzuri."}]}) + "\n",
                      encoding="utf-8")
    run = training_run_create(kind="sft", base_model=base, sft_file=str(upload), enqueue=False)
    assert (run.resolved["sft"]["chat_template_name"], run.resolved["sft"]["chat_template"]) == ("alpaca", None)

    # The version is evaluated with the template its manifest recorded, even after the base model's changed.
    version = ModelVersion.objects.create(name="v", base_model=base, run=run, kind="sft", adapter_path="/x",
                                          manifest={"chat_template": {"source": "alpaca", "text": "RECORDED"}})
    base.chat_template_name = "question_answer"
    base.save()
    evaluated = EvaluationRun.objects.create(base_model=base, model_version=version, benchmarks=["xcopa"])
    assert model_spec(evaluated).chat_template == "RECORDED"
    bare = EvaluationRun.objects.create(base_model=base, benchmarks=["xcopa"])
    assert (model_spec(bare).chat_template, model_spec(bare).chat_template_name) == ("", "question_answer")
