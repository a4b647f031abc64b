"""Sentence embedding: texts -> one vector each, for semantic search and RAG.

The model is an encoder (``AutoModel``, no classification head) wrapped in :class:`SentenceEmbedder`,
which pools the token vectors (mean over real tokens, or [CLS]) and L2-normalises them, so the pooling is
part of the exported ONNX graph (output ``sentence_embedding``) and a bundle alone gives the vectors a
sentence-transformers model gives. Pooling and normalisation come from a sentence-transformers folder
(``modules.json``, ``1_Pooling/config.json``) unless the recipe's ``task:`` section says otherwise.

Metrics need no labelled pairs: agreement (cosine to the reference variant's vectors), neighbour
recall@10 (of the reference's 10 nearest neighbours in the held-out corpus, the share the variant also
ranks top 10) and, when the data has labels, a linear probe (logistic regression on the frozen vectors).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from compress.errors import DataError, ModelLoadError, StageError
from compress.models.persistence import register_architecture
from compress.tasks.base import register_task
from compress.tasks.text_classification import TextClassification

OUTPUT_NAME = "sentence_embedding"
RECALL_K = 10
MAX_QUERIES = 1000
POOLING_MODES = {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}


def pool(hidden: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """(B, L, H) token vectors -> (B, H): [CLS], or the mean over real tokens (as sentence-transformers)."""
    if pooling == "cls":
        return hidden[:, 0]
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)


class SentenceEmbedder(nn.Module):
    """An encoder plus pooling (and normalisation): named inputs -> ``.logits`` holding the sentence vectors.

    The encoder sits under the attribute ``config.model_type`` (``self.bert``), as in Hugging Face's
    classifiers, so the family adapters, student building and persistence treat it like one. Pooling and
    normalisation are kept in the config (``sentence_pooling``, ``sentence_normalize``), so a saved model
    rebuilds with them."""

    def __init__(self, config: Any, encoder: nn.Module | None = None) -> None:
        super().__init__()
        from transformers import AutoModel

        self.config = config
        setattr(self, config.model_type, encoder if encoder is not None else AutoModel.from_config(config))

    @property
    def encoder(self) -> nn.Module:
        return getattr(self, self.config.model_type)

    @property
    def pooling(self) -> str:
        return getattr(self.config, "sentence_pooling", "mean")

    @property
    def normalize(self) -> bool:
        return bool(getattr(self.config, "sentence_normalize", True))

    def set_attn_implementation(self, implementation: str) -> None:
        self.encoder.set_attn_implementation(implementation)

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.get_input_embeddings()

    def set_input_embeddings(self, embeddings: nn.Module) -> None:
        self.encoder.set_input_embeddings(embeddings)

    def forward(self, input_ids, attention_mask, output_hidden_states: bool = False, **inputs):
        from transformers.modeling_outputs import SequenceClassifierOutput

        out = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=output_hidden_states, **inputs
        )
        vectors = pool(out.last_hidden_state, attention_mask, self.pooling)
        if self.normalize:
            vectors = F.normalize(vectors, p=2, dim=-1)
        return SequenceClassifierOutput(logits=vectors, hidden_states=out.hidden_states)


register_architecture(SentenceEmbedder)


def sentence_transformers_settings(location: Path) -> tuple[str | None, bool | None]:
    """(pooling, normalize) a sentence-transformers folder declares; (None, None) for a plain checkpoint."""
    modules_file = location / "modules.json"
    if not modules_file.is_file():
        return None, None
    try:
        modules = json.loads(modules_file.read_text(encoding="utf-8"))
        kinds = {str(m.get("type", "")).rsplit(".", 1)[-1]: m for m in modules}
    except (ValueError, AttributeError, TypeError) as error:
        raise ModelLoadError(f"{modules_file}: not a sentence-transformers modules list ({error})") from None
    pooling = None
    if "Pooling" in kinds:
        pooling_file = location / str(kinds["Pooling"].get("path", "1_Pooling")) / "config.json"
        if pooling_file.is_file():
            declared = json.loads(pooling_file.read_text(encoding="utf-8"))
            chosen = [mode for key, mode in POOLING_MODES.items() if declared.get(key)]
            others = [k for k, v in declared.items() if k.startswith("pooling_mode") and v and k not in POOLING_MODES]
            if others or len(chosen) != 1:
                raise ModelLoadError(
                    f"{pooling_file}: pooling {', '.join(others) or chosen or 'none'} is not supported; "
                    "compress pools by mean or cls (set task.pooling to choose one)"
                )
            pooling = chosen[0]
    return pooling, "Normalize" in kinds


def load_embedder(location: Path | str, pooling: str | None, normalize: bool | None) -> SentenceEmbedder:
    """``AutoModel`` from a checkpoint (a sentence-transformers folder or a plain encoder), wrapped."""
    from transformers import AutoModel

    declared_pooling, declared_normalize = (
        sentence_transformers_settings(Path(location)) if Path(str(location)).is_dir() else (None, None)
    )
    try:
        encoder = AutoModel.from_pretrained(str(location))
    except Exception as error:
        raise ModelLoadError(f"{location}: cannot load the encoder ({error})") from None
    config = encoder.config
    config.sentence_pooling = pooling or declared_pooling or "mean"
    config.sentence_normalize = bool(normalize if normalize is not None else declared_normalize in (True, None))
    return SentenceEmbedder(config, encoder).eval()


# --- metrics on vectors ---------------------------------------------------------------------------------


def cosine_distance(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean ``1 - cos`` between the student's and the teacher's vectors (direction is what cosine search
    compares): the embedding KD loss of distillation and of prune recovery."""
    return (1 - F.cosine_similarity(student, teacher.to(student.dtype), dim=-1)).mean()


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)


def teacher_agreement(vectors: np.ndarray, reference: np.ndarray) -> tuple[float, float]:
    """Mean and 5th-percentile cosine between each row of ``vectors`` and the same row of ``reference``."""
    cosines = (_unit(vectors) * _unit(reference)).sum(-1)
    return float(cosines.mean()), float(np.percentile(cosines, 5))


def nearest(vectors: np.ndarray, queries: int, k: int) -> np.ndarray:
    """For the first ``queries`` rows, the indices of their ``k`` most cosine-similar other rows."""
    unit = _unit(vectors)
    scores = unit[:queries] @ unit.T
    scores[np.arange(queries), np.arange(queries)] = -np.inf  # a text is not its own neighbour
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def neighbour_recall(vectors: np.ndarray, reference: np.ndarray, k: int = RECALL_K,
                     queries: int = MAX_QUERIES) -> float:
    """Share of the reference's ``k`` nearest neighbours (per query) that ``vectors`` also ranks top ``k``;
    the queries are the corpus's first rows, searched against the whole corpus."""
    k = min(k, len(vectors) - 1)
    if k < 1:
        raise ValueError("neighbour recall needs at least two texts")
    queries = min(queries, len(vectors))
    mine, theirs = nearest(vectors, queries, k), nearest(reference, queries, k)
    hits = [len(set(a.tolist()) & set(b.tolist())) for a, b in zip(mine, theirs, strict=True)]
    return float(np.mean(hits) / k)


def linear_probe(train_x: np.ndarray, train_y: Sequence[int], test_x: np.ndarray, test_y: Sequence[int],
                 steps: int = 100, l2: float = 1e-3) -> float:
    """Test accuracy of a multinomial logistic regression fitted on frozen vectors (full-batch LBFGS)."""
    x = torch.as_tensor(np.asarray(train_x), dtype=torch.float64)
    mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
    x = (x - mean) / std
    y = torch.as_tensor(np.asarray(train_y), dtype=torch.long)
    classes = int(max(int(y.max()), int(np.max(test_y))) + 1)
    linear = nn.Linear(x.shape[1], classes).double()
    optimizer = torch.optim.LBFGS(linear.parameters(), max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = F.cross_entropy(linear(x), y) + l2 * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    test = (torch.as_tensor(np.asarray(test_x), dtype=torch.float64) - mean) / std
    with torch.no_grad():
        predicted = linear(test).argmax(-1).numpy()
    return float((predicted == np.asarray(test_y)).mean())


def embedding_scores(vectors: np.ndarray, reference: np.ndarray, labels: Sequence[int] | None) -> dict[str, float]:
    """Every embedding metric of ``vectors`` against the reference variant's (``recall_at_10`` first).

    The linear probe (when ``labels`` hold two classes or more) is cross-validated over the rows, held-out
    texts no stage trained on: :data:`PROBE_FOLDS` contiguous folds (the split is already shuffled), each
    tested with a probe fitted on the others; the accuracy is over every row. (One half-and-half split
    fitted on half the rows and tested on 1,000 of them: a standard error of ~1.5 pt.)"""
    mean, p5 = teacher_agreement(vectors, reference)
    scores = {f"recall_at_{RECALL_K}": neighbour_recall(vectors, reference), "cosine_mean": mean, "cosine_p5": p5}
    if labels is not None and len(set(labels)) >= 2 and len(labels) >= 2 * PROBE_FOLDS:
        scores["probe_accuracy"] = cross_validated_probe(np.asarray(vectors), np.asarray(list(labels)))
    return scores


PROBE_FOLDS = 5


def cross_validated_probe(vectors: np.ndarray, labels: np.ndarray, folds: int = PROBE_FOLDS) -> float:
    """Accuracy of :func:`linear_probe` over ``folds`` contiguous folds, each predicted by a probe fitted on
    the other folds (weighted by fold size, so it is the accuracy over every row)."""
    bounds = np.linspace(0, len(labels), folds + 1).astype(int)
    correct = 0.0
    for start, stop in zip(bounds[:-1], bounds[1:], strict=True):
        keep = np.r_[0:start, stop:len(labels)]
        if len(set(labels[keep].tolist())) < 2:
            continue
        correct += linear_probe(vectors[keep], labels[keep], vectors[start:stop], labels[start:stop]) * (stop - start)
    return float(correct / len(labels))


# --- the task -------------------------------------------------------------------------------------------


def unlabelled_texts(dataset: str, text_column: str) -> list[str] | None:
    """Texts of an unlabelled dataset (a built-in corpus cut into sentences, a .txt, or a table without
    labels); ``None`` when the dataset is a labelled one."""
    from compress.data.transfer import TRANSFER_CORPORA, read_texts, split_sentences

    if dataset in TRANSFER_CORPORA:
        return [s for doc in TRANSFER_CORPORA[dataset]() for s in split_sentences(doc) if len(s.split()) >= 3]
    path = Path(dataset)
    if path.suffix == ".txt":
        return read_texts(path)
    return None


@register_task
class SentenceEmbedding(TextClassification):
    """Texts and their tokenizer as in text classification; vectors instead of labels."""

    name = "sentence-embedding"
    output_names = (OUTPUT_NAME,)
    metric_names = (f"recall_at_{RECALL_K}", "cosine_mean", "cosine_p5", "probe_accuracy")
    primary_metric = f"recall_at_{RECALL_K}"

    def load_splits(self, data_config):
        from compress.data.dataset import stratified_split
        from compress.data.sources import load_task

        texts = unlabelled_texts(data_config.dataset, data_config.text_column)
        if texts is None:
            return load_task(data_config)
        texts = [t for t in texts if t.strip()]
        if not texts:
            raise DataError(f"dataset {data_config.dataset!r} has no texts")
        return stratified_split(
            Path(data_config.dataset).name, texts, [0] * len(texts), ("unlabelled",),
            data_config.test_size, data_config.dev_size, data_config.seed, data_config.limit,
        )

    def load_model(self, model_config, data, options):
        from compress.models.persistence import is_compress_model_dir, load_model
        from compress.models.sources import EMBEDDED_ALIASES, LoadedModel, embedded_model_dir

        source = model_config.source
        location: Path | str = Path(source).expanduser()
        if source.lower() in EMBEDDED_ALIASES:
            location = embedded_model_dir()
        elif is_compress_model_dir(Path(location)):
            module = load_model(location, trusted=model_config.trust_model_code)
            if not isinstance(module, SentenceEmbedder):
                raise ModelLoadError(f"{location}: a compress {type(module).__name__}, not a sentence embedder")
            return LoadedModel(module, Path(model_config.tokenizer or location))
        elif not Path(location).is_dir():
            if source.count("/") != 1 or source.startswith((".", "/")):
                raise ModelLoadError(f"model.source {source!r}: no such directory")
            location = source
        module = load_embedder(location, options.pooling, options.normalize)
        return LoadedModel(module, Path(model_config.tokenizer or str(location)))

    def check_model(self, module: nn.Module, inputs: dict[str, np.ndarray], data: Any, source: str) -> None:
        try:
            with torch.inference_mode():
                out = module.eval()(**{k: torch.from_numpy(v) for k, v in inputs.items()}).logits
        except Exception as error:
            raise ModelLoadError(
                f"model.source {source!r}: the model cannot run on token ids from its tokenizer "
                f"({type(error).__name__}: {str(error).splitlines()[0][:200]})"
            ) from None
        if out.ndim != 2:
            raise ModelLoadError(f"model.source {source!r}: expected one vector per text, got shape {tuple(out.shape)}")

    def bundle_fields(self, module: nn.Module, onnx_path: Path) -> dict[str, object]:
        """The task, pooling, normalisation and vector width (read from the bundled graph)."""
        import onnx

        graph = onnx.load(str(onnx_path), load_external_data=False).graph
        dim = graph.output[0].type.tensor_type.shape.dim[-1].dim_value
        return {"task": self.name, "output": OUTPUT_NAME, "pooling": module.config.sentence_pooling,
                "normalize": bool(module.config.sentence_normalize), "dim": int(dim)}

    def for_data(self, data):
        return self

    def check_recipe(self, stages, config) -> None:
        """An embedder has no head to train. ``prune`` is refused where it would need labels (Taylor
        importance; recovery without distilling from the unpruned model) or would change the vectors'
        width (``hidden``), naming the option."""
        from compress.errors import RecipeError

        for spec in stages:
            if spec.kind != "prune":
                continue
            options = spec.config
            problems = []
            if options.importance == "taylor":
                problems.append("importance 'taylor' (gradients of a label loss; use magnitude or random)")
            if options.hidden:
                problems.append("hidden (it would change the embedding width, so vectors no longer compare)")
            if options.recover.epochs and not options.recover.distill_from_unpruned:
                problems.append("recover.distill_from_unpruned: false (recovery learns the unpruned model's vectors)")
            if problems:
                raise RecipeError(
                    f"stage {spec.id!r}: pruning a sentence embedder cannot use {'; '.join(problems)}",
                    hint="prune heads, head_dims, ffn or layers, with recovery by embedding distillation",
                )

    def loss(self, logits, labels):
        """An embedder has no labels to learn: training it always distils (:meth:`kd_loss`)."""
        raise StageError("a sentence embedder trains only by distillation from a teacher's vectors")

    def kd_loss(self, student, teacher, labels, temperature: float, hard_label_weight: float):
        """:func:`cosine_distance` of the sentence vectors (labels and temperature unused)."""
        return cosine_distance(student, teacher)

    def predictions(self, outputs: np.ndarray) -> np.ndarray:
        return np.asarray(outputs)

    def score(self, outputs: np.ndarray, reference: np.ndarray, labels: Sequence[int]) -> dict[str, float]:
        return embedding_scores(outputs, reference, labels)

    dev_against_teacher = True
    unsupported_stages = ("finetune",)
    unsupported_because = "unlabelled sentence embeddings (fine-tuning trains a head on labels)"
    supported_summary = "prune, distill, vocab_prune, export, quantize, evaluate, bundle and report"

    def primary(self, outputs: np.ndarray, labels: Sequence[int] | np.ndarray) -> float:
        """Neighbour recall@10 against the teacher's vectors when ``labels`` are those vectors (distillation's
        dev check, :attr:`dev_against_teacher`); else the probe accuracy (0 without labels)."""
        reference = np.asarray(labels)
        if reference.ndim == 2 and reference.shape == np.shape(outputs):
            return neighbour_recall(outputs, reference)
        return self.metrics(outputs, labels)["accuracy"]

    def metrics(self, outputs: np.ndarray, labels: Sequence[int]) -> dict[str, float]:
        """Without a reference: the probe accuracy when there are labels (what training's dev check reads)."""
        scores = embedding_scores(outputs, outputs, labels)
        return {"accuracy": scores.get("probe_accuracy", 0.0)}
