"""Tiny random checkpoints and a synthetic sentiment task, so tests run real code in seconds."""

from __future__ import annotations

import csv
import io
import random
from pathlib import Path

from rich.console import Console
from tokenizers import Tokenizer, models, pre_tokenizers, processors

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
POSITIVE = ["great", "wonderful", "moving", "brilliant", "charming", "superb", "delightful", "funny"]
NEGATIVE = ["dull", "boring", "awful", "tedious", "clumsy", "bland", "messy", "flat"]
NEUTRAL = [
    "the", "a", "film", "movie", "plot", "actors", "story", "director", "is", "was", "and", "with",
    "scenes", "music", "ending", "script", "cast", "pace", "this", "its", "very", "quite", "rather",
]
VOCAB = SPECIALS + POSITIVE + NEGATIVE + NEUTRAL
FAMILIES = ("bert", "distilbert", "roberta")


def tiny_tokenizer() -> Tokenizer:
    tokenizer = Tokenizer(models.WordPiece({w: i for i, w in enumerate(VOCAB)}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    return tokenizer


def synthetic_rows(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Texts with one sentiment word among neutral filler; the label follows that word."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        words = rng.choices(NEUTRAL, k=rng.randint(4, 12))
        words.insert(rng.randrange(len(words) + 1), rng.choice(POSITIVE if label == "pos" else NEGATIVE))
        rows.append((" ".join(words), label))
    return rows


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return path


def tiny_config(family: str, num_labels: int = 2, layers: int = 2, heads: int = 4, hidden: int = 32):
    from transformers import BertConfig, DistilBertConfig, RobertaConfig

    common = {"vocab_size": len(VOCAB), "num_labels": num_labels, "pad_token_id": 0}
    if family == "bert":
        return BertConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                          intermediate_size=hidden * 2, max_position_embeddings=128, **common)
    if family == "roberta":
        return RobertaConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                             intermediate_size=hidden * 2, max_position_embeddings=130, bos_token_id=2,
                             eos_token_id=3, **common)
    if family == "distilbert":
        return DistilBertConfig(dim=hidden, n_layers=layers, n_heads=heads, hidden_dim=hidden * 2,
                                max_position_embeddings=128, **common)
    from transformers import CONFIG_MAPPING, AutoConfig

    if family in CONFIG_MAPPING:  # a newly registered family: Hugging Face's common config names
        return AutoConfig.for_model(family, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                                    intermediate_size=hidden * 2, max_position_embeddings=128, **common)
    raise ValueError(family)


def registered_families() -> list[str]:
    """Every ``model_type`` in compress's family registry: family-specific tests run over these."""
    from compress.models.families import family_names

    return family_names()


def tiny_family_model(family: str, layers: int = 2, heads: int = 4, seed: int = 0):
    """A random tiny ``*ForSequenceClassification`` of ``family`` (hidden 32) in eval mode."""
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    return AutoModelForSequenceClassification.from_config(tiny_config(family, layers=layers, heads=heads)).eval()


def tiny_bert_teacher(layers: int = 4, heads: int = 4, seed: int = 0):
    """A random tiny ``BertForSequenceClassification`` (hidden 32) in eval mode."""
    import torch
    from transformers import BertForSequenceClassification

    torch.manual_seed(seed)
    return BertForSequenceClassification(tiny_config("bert", layers=layers, heads=heads)).eval()


def padded_ids(seed: int = 0):
    """(input_ids, attention_mask) of 3 random texts of 9 tokens, the first padded after 6."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, len(VOCAB), (3, 9), generator=generator)
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0
    return ids, mask


def padded_inputs(seed: int = 0) -> dict:
    """:func:`padded_ids` as named model inputs (what a task collates)."""
    ids, mask = padded_ids(seed)
    return {"input_ids": ids, "attention_mask": mask}


def layer_output(layer, hidden, mask):
    """One encoder layer's output for ``hidden`` under the 0/1 ``mask`` (as an additive attention mask)."""
    import torch

    additive = (1.0 - mask[:, None, None, :].float()) * torch.finfo(torch.float32).min
    out = layer(hidden, attention_mask=additive)
    return out[0] if isinstance(out, tuple) else out


def make_checkpoint(directory: Path, family: str = "bert", seed: int = 0, **config_kwargs) -> Path:
    """Save a randomly initialised ``*ForSequenceClassification`` plus tokenizer.json to ``directory``."""
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(tiny_config(family, **config_kwargs))
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tiny_tokenizer().save(str(directory / "tokenizer.json"))
    return directory


class LegacyStateDict(dict):
    """A dict subclass: pickling it stores a global that ``torch.load(weights_only=True)`` refuses to import,
    like old checkpoints saved with custom classes. Harmless, so tests can load it with explicit trust."""


class RunsCode:
    """Unpickling this runs ``touch <marker>``: stands in for a malicious checkpoint."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def quiet_console() -> tuple[Console, io.StringIO]:
    """A console that writes into a buffer (returned too), so a test can read what a run printed."""
    buffer = io.StringIO()
    return Console(file=buffer, width=200), buffer


def make_sentence_transformers_dir(directory: Path, pooling: str = "mean", normalize: bool = True,
                                   seed: int = 0, layer_scale: float = 1.0) -> Path:
    """A tiny random BertModel saved as a sentence-transformers folder: the encoder and tokenizer.json at the
    root, ``modules.json`` and ``1_Pooling/config.json`` (and a Normalize module when ``normalize``).
    ``layer_scale`` multiplies the encoder layers' Linear weights (at the default init, 0.02, the layers
    barely change the embeddings, so pruning them would change the vectors by almost nothing)."""
    import json

    import torch
    from transformers import BertModel

    torch.manual_seed(seed)
    model = BertModel(tiny_config("bert"), add_pooling_layer=False)
    with torch.no_grad():
        for name, parameter in model.encoder.named_parameters():
            if name.endswith("weight") and parameter.ndim == 2:
                parameter.mul_(layer_scale)
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    tiny_tokenizer().save(str(directory / "tokenizer.json"))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]
    if normalize:
        modules.append({"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"})
    (directory / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    (directory / "1_Pooling").mkdir(exist_ok=True)
    (directory / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": 32,
        "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean",
        "pooling_mode_max_tokens": False,
    }), encoding="utf-8")
    return directory


def write_texts(path: Path, n: int, seed: int = 0) -> Path:
    """``n`` synthetic texts, one per line (an unlabelled corpus)."""
    path.write_text("\n".join(text for text, _ in synthetic_rows(n, seed)) + "\n", encoding="utf-8")
    return path
