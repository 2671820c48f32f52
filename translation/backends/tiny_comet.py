"""A tiny random-weight COMET-Kiwi-style checkpoint, built locally for tests: comet's UnifiedMetric (the class of
Unbabel/wmt22-cometkiwi-da, reference-free: input segments mt and src) on an XLM-RoBERTa encoder of 2 layers of
width 32, with a Unigram tokenizer (XLM-R's kind) trained here with the `tokenizers` library on the given texts and
saved so that XLMRobertaTokenizerFast.from_pretrained(<folder>) loads it offline. Its scores are noise in (0, 1) (a
sigmoid on top, spread by `_spread`); what it proves is the path (load_from_checkpoint offline, predict, the
subprocess scorer).

It needs unbabel-comet, which does not install beside Crossfeed's own packages (numpy < 2, transformers < 5), so it
runs inside the scorer's environment, by path, importing nothing of Crossfeed:

    <comet-venv>/bin/python -I translation/backends/tiny_comet.py OUT_DIR TEXTS.json

OUT_DIR gets the layout of a model downloaded from the hub: hparams.yaml, checkpoints/model.ckpt, and encoder/ (the
encoder's config and tokenizer, which hparams.yaml's `pretrained_model` names by absolute path).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SPECIAL = ["<s>", "<pad>", "</s>", "<unk>"]  # XLM-R's ids 0..3; <mask> is added last, as XLM-R has it


def _tokenizer(texts: list[str], folder: Path):  # noqa: ANN202 - transformers is the scorer environment's
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import XLMRobertaTokenizerFast

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=400, special_tokens=SPECIAL, **{"unk_token": "<unk>"})
    tokenizer.train_from_iterator(texts, trainer=trainer)
    tokenizer.add_special_tokens(["<mask>"])
    bos, eos = tokenizer.token_to_id("<s>"), tokenizer.token_to_id("</s>")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", bos), ("</s>", eos)])
    names = {"bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>", "unk_token": "<unk>",
             "pad_token": "<pad>", "mask_token": "<mask>"}
    fast = XLMRobertaTokenizerFast(tokenizer_object=tokenizer, model_max_length=512, **names)
    fast.save_pretrained(folder)
    return fast


def _spread(model, texts: list[str], factor: float = 2000.0) -> None:  # noqa: ANN001
    """A random encoder gives every pair nearly the same sentence embedding, so the sigmoid's output differs only
    in the fourth decimal; the last layer's weights are scaled up and its bias set so that the pairs of `texts`
    spread around 0.5 (about 0.4 to 0.65), which lets a test tell the scores of different pairs apart."""
    import torch

    pairs = [{"src": source, "mt": translation} for source in texts[:6] for translation in texts[:6]]
    last = model.estimator.ff[-2]  # Linear(hidden, 1), before the sigmoid
    with torch.no_grad():
        scores = torch.tensor(model.predict(pairs, batch_size=16, gpus=0, progress_bar=False).scores,
                              dtype=torch.float64)
        mean = torch.logit(scores).mean()
        last.weight.mul_(factor)
        last.bias.copy_(-factor * (mean - last.bias.double()))


def build_tiny_comet(output_dir: str | Path, texts: list[str], *, seed: int = 0) -> Path:
    """The checkpoint file (OUT_DIR/checkpoints/model.ckpt) of a tiny UnifiedMetric, as comet's
    load_from_checkpoint reads it."""
    import pytorch_lightning
    import torch
    import yaml
    from comet.models import UnifiedMetric
    from transformers import XLMRobertaConfig

    output = Path(output_dir).resolve()
    encoder = output / "encoder"
    encoder.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(texts, encoder)
    XLMRobertaConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=514, type_vocab_size=1, pad_token_id=1,
                     bos_token_id=0, eos_token_id=2).save_pretrained(encoder)
    torch.manual_seed(seed)
    # load_pretrained_weights False: the encoder is made from the config with random weights (nothing to load).
    model = UnifiedMetric(encoder_model="XLM-RoBERTa", pretrained_model=str(encoder), load_pretrained_weights=False,
                          local_files_only=True, input_segments=["mt", "src"], hidden_sizes=[64], word_layer=2,
                          sent_layer="mix", layer_transformation="sparsemax", final_activation="sigmoid")
    _spread(model, texts)
    # As a downloaded checkpoint's: the loader, not the file, turns the encoder download off.
    hparams = {**dict(model.hparams), "load_pretrained_weights": True, "local_files_only": False}
    (output / "checkpoints").mkdir(exist_ok=True)
    checkpoint = output / "checkpoints" / "model.ckpt"
    # What Lightning's own save_checkpoint writes for a model, less the trainer's state predict does not read.
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hparams, "epoch": 0, "global_step": 0,
                "pytorch-lightning_version": pytorch_lightning.__version__}, checkpoint)
    (output / "hparams.yaml").write_text(yaml.safe_dump({"class_identifier": "unified_metric", **hparams}),
                                         encoding="utf-8")
    return checkpoint


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -I translation/backends/tiny_comet.py OUT_DIR TEXTS.json (a JSON list of strings)")
    print(build_tiny_comet(sys.argv[1], json.loads(Path(sys.argv[2]).read_text(encoding="utf-8"))))
