from __future__ import annotations

import re
from pathlib import Path

from django.db import transaction

from crossfeed.errors import InvalidInput
from training.models import BaseModel, ChatTemplateName

HUB_ID_RE = re.compile(r"[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}")


def check_model_path(path: str, *, field: str = "path") -> str:
    """A local folder with config.json, or a hub id (org/name) for hosts that can download."""
    path = (path or "").strip()
    if not path:
        raise InvalidInput("required: a local model folder or a hub id such as meta-llama/Llama-2-7b-hf", field=field)
    local = Path(path).expanduser()
    if path.startswith(("/", ".", "~")) or local.exists():
        if not (local / "config.json").is_file():
            raise InvalidInput(f"{path} is not a saved model folder (no config.json in it)", field=field)
        return str(local.resolve())
    if not HUB_ID_RE.fullmatch(path):
        raise InvalidInput(f"{path!r} is neither an existing folder nor a hub id (org/name)", field=field)
    return path


def check_base_model_name(name: str, *, exclude: int | None = None) -> str:
    """A name of at most 200 characters that no other base model has, whatever the case."""
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidInput("required, at most 200 characters", field="name")
    if BaseModel.objects.filter(name__iexact=name).exclude(pk=exclude).exists():
        raise InvalidInput(f"a base model named {name!r} already exists", field="name")
    return name


def check_chat_template_name(name: str) -> str:
    if name not in ChatTemplateName.values:
        raise InvalidInput(f"one of {', '.join(ChatTemplateName.values)}", field="chat_template_name")
    return name


@transaction.atomic
def base_model_register(*, name: str, path: str, chat_template: str = "", notes: str = "",
                        chat_template_name: str = ChatTemplateName.AUTO, created_by=None) -> BaseModel:
    """Register a base model. Its chat template (a custom Jinja `chat_template`, else `chat_template_name`: the
    tokenizer's own or the seed's Question/Answer format, or Alpaca) is used by training and evaluation alike."""
    return BaseModel.objects.create(
        name=check_base_model_name(name), path=check_model_path(path), chat_template=chat_template or "",
        chat_template_name=check_chat_template_name(chat_template_name), notes=notes or "",
        created_by=created_by if created_by is not None and created_by.is_authenticated else None,
    )


TINY_MODEL_NAME = "tiny-llama (random weights)"


def platform_texts() -> list[str]:
    """Our own multilingual texts: every language's names and the demo items, so the tokenizer sees each script."""
    import json as json_module

    from annotation.languages import all_languages
    from annotation.services.demo import DATA

    texts = [f"{spec.name} {spec.native_name}" for spec in all_languages()]
    with (DATA / "demo_items.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            item = json_module.loads(line)
            texts.append(item["prompt"]["text"])
            texts.extend(response["text"] for response in item["responses"])
    return texts


def tiny_model_build(*, output_dir: Path, register: bool = True) -> BaseModel | None:
    """Build the tiny Llama model into output_dir (if not there yet) and register it as a base model."""
    from training.tiny_model import build_tiny_model

    if not (output_dir / "config.json").is_file():
        build_tiny_model(output_dir, platform_texts())
    if not register:
        return None
    existing = BaseModel.objects.filter(name=TINY_MODEL_NAME).first()
    if existing is not None:
        return existing
    return base_model_register(
        name=TINY_MODEL_NAME, path=str(output_dir),
        notes="Built locally by `manage.py build_tiny_model`: 2 layers, hidden size 64, random weights, byte-level "
              "BPE tokenizer trained on Crossfeed's own texts. For demos and tests; it learns, but knows nothing.",
    )
