"""The model-family seam: one adapter per Hugging Face ``model_type``, looked up in one registry.

An adapter knows where a family keeps its structure (encoder layers, attention projections and head
bookkeeping, FFN, embeddings), how to drop layers, how to configure a student, which ORT fusion type its
graphs take, and which operations (:data:`OPERATIONS`) compress can apply to it. Stages and techniques ask
the adapter; nothing else branches on ``model_type``.

Adding a family is one module in this package that subclasses :class:`FamilyAdapter` and decorates it
with :func:`register_family`; the package's modules are imported on the first lookup.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from compress.errors import StageError

if TYPE_CHECKING:
    from torch import nn

OPERATIONS = ("prune", "distill", "vocab_prune", "fuse")
"""What a family may support: structured pruning, distilling a student of the family, vocabulary pruning
and ORT transformer fusion of its exported graph."""

PRUNE_DIMENSIONS = ("heads", "head_dims", "ffn", "hidden", "layers")


@dataclass(frozen=True)
class AttentionLayout:
    """One attention module's bookkeeping: head count, head size and the scaling of ``q . k``."""

    heads: int
    head_size: int
    scaling: float

    def to_dict(self) -> dict[str, float]:
        return {"heads": self.heads, "head_size": self.head_size, "scaling": self.scaling}


class FamilyAdapter:
    """Where one family keeps its structure. Subclasses set ``model_types`` and ``operations`` and
    implement the layout methods; the defaults here serve any family with Hugging Face's common names."""

    model_types: tuple[str, ...] = ()
    """The ``config.model_type`` values this adapter serves."""
    operations: frozenset[str] = frozenset()
    """The subset of :data:`OPERATIONS` this family supports."""
    fusion_type: str | None = None
    """``model_type`` for ``onnxruntime.transformers.optimizer`` (None: its graphs are not fused)."""
    missing: str = ""
    """Why the operations this family lacks are not supported (what would have to be written), for the
    refusal message."""
    scaling_follows_head_size: bool = False
    """True where the attention computes ``1/sqrt(head size)`` at every call (no scaling of its own)."""
    prune_refusals: dict[str, str] = {}
    """Pruning dimensions (``heads``, ``head_dims``, ``ffn``, ``hidden``, ``layers``) this family refuses
    although it supports ``prune``, each with the reason."""

    @property
    def name(self) -> str:
        return self.model_types[0]

    def supports(self, operation: str) -> bool:
        return operation in self.operations

    def refused_prune(self, spec: Any) -> str:
        """Why this family refuses a dimension the pruning ``spec`` asks for ("" when it refuses none)."""
        asked = [d for d in PRUNE_DIMENSIONS if getattr(spec, d, None)]
        reasons = [f"{d} ({self.prune_refusals[d]})" for d in asked if d in self.prune_refusals]
        if not reasons:
            return ""
        allowed = [d for d in PRUNE_DIMENSIONS if d not in self.prune_refusals]
        return (
            f"prune: model family {self.name!r} cannot prune {'; '.join(reasons)}; "
            f"it can prune {', '.join(allowed)}"
        )

    # --- structure --------------------------------------------------------------------------------------
    def backbone(self, model: nn.Module) -> nn.Module:
        """The encoder model inside a ``*ForSequenceClassification`` (``model.bert`` ...)."""
        return getattr(model, model.config.model_type)

    def encoder_layers(self, model: nn.Module) -> nn.ModuleList:
        raise NotImplementedError

    def self_attention(self, layer: nn.Module) -> nn.Module:
        """The module holding one encoder layer's Q/K/V projections and head bookkeeping."""
        raise NotImplementedError

    def attention_projections(self, layer: nn.Module) -> tuple[nn.Linear, nn.Linear, nn.Linear]:
        """The query, key and value projections of one encoder layer."""
        raise NotImplementedError

    def attention_output(self, layer: nn.Module) -> nn.Linear:
        """The projection from the attention heads back to the hidden width."""
        raise NotImplementedError

    def ffn_projections(self, layer: nn.Module) -> tuple[nn.Linear, nn.Linear]:
        """The feed-forward block's (hidden -> intermediate, intermediate -> hidden) projections."""
        raise NotImplementedError

    def embeddings(self, model: nn.Module) -> nn.Module:
        return self.backbone(model).embeddings

    def word_embeddings(self, model: nn.Module) -> nn.Embedding:
        return self.embeddings(model).word_embeddings

    def residual_root(self, model: nn.Module) -> nn.Module:
        """The first module whose outputs are the residual stream (hidden pruning cuts its outputs)."""
        return self.word_embeddings(model)

    def hidden_width(self, model: nn.Module) -> int:
        root = self.residual_root(model)
        return int(root.embedding_dim if hasattr(root, "embedding_dim") else root.out_features)

    def layer_kwargs(self, model: nn.Module, hidden: Any) -> dict[str, Any]:
        """Extra keyword arguments an encoder layer of ``model`` needs when called alone on ``hidden``."""
        return {}

    def attention_bias(self, args: tuple, kwargs: dict[str, Any]) -> Any:
        """The additive score bias a call of :meth:`self_attention` carries besides the mask (MPNet's
        relative position bias), from that call's extra arguments; None where the family has none."""
        return None

    def student_tensor(self, name: str, teacher_value: Any, student_shape: Any) -> Any:
        """The student's tensor ``name`` made from the teacher's tensor of that name (by default as is)."""
        return teacher_value

    # --- head bookkeeping -------------------------------------------------------------------------------
    def read_layout(self, attention: nn.Module) -> AttentionLayout:
        raise NotImplementedError

    def write_layout(self, attention: nn.Module, layout: AttentionLayout) -> None:
        """Make the attention module's head count, head size, width and scaling say ``layout`` (head-dim
        pruning runs silently wrong when they disagree with the Linear shapes)."""
        raise NotImplementedError

    def attention_layout(self, model: nn.Module) -> list[AttentionLayout]:
        return [self.read_layout(self.self_attention(layer)) for layer in self.encoder_layers(model)]

    def set_attention_layout(self, model: nn.Module, layouts: list[AttentionLayout]) -> None:
        layers = self.encoder_layers(model)
        if len(layouts) != len(layers):
            raise StageError(f"attention layout has {len(layouts)} layers, the model has {len(layers)}")
        for layer, layout in zip(layers, layouts, strict=True):
            self.write_layout(self.self_attention(layer), layout)

    # --- surgery and configs ----------------------------------------------------------------------------
    def keep_layers(self, model: nn.Module, keep: list[int]) -> None:
        """Keep only the encoder layers at ``keep`` (in order) and make the config say so."""
        raise NotImplementedError

    def set_ffn_width(self, config: Any, width: int) -> None:
        """Record a uniform FFN width in the config (after FFN pruning)."""
        config.intermediate_size = width

    def ffn_width(self, config: Any) -> int:
        """The FFN (intermediate) width a config of this family declares."""
        return int(config.intermediate_size)

    def hidden_dropout(self, config: Any) -> float:
        """The hidden-state dropout a config of this family declares."""
        return float(config.hidden_dropout_prob)

    def student_config(self, teacher_config: Any, layers: int, heads: int, hidden: int | None,
                       ffn: int | None, dropout: float | None) -> Any:
        """A stock config of this family for a student: fewer layers and heads, optionally narrower."""
        raise NotImplementedError

    def relation_heads(self, teacher_config: Any, student_config: Any) -> int:
        """Relation heads for the attention loss: the teacher's head count, or the largest smaller count
        dividing both hidden widths."""
        widths = (teacher_config.hidden_size, student_config.hidden_size)
        return next(
            r for r in range(teacher_config.num_attention_heads, 0, -1) if all(w % r == 0 for w in widths)
        )


_REGISTRY: dict[str, FamilyAdapter] = {}
_DISCOVERED = False


def register_family(adapter: type[FamilyAdapter]) -> type[FamilyAdapter]:
    """Class decorator: register one instance of ``adapter`` under each of its ``model_types``."""
    instance = adapter()
    for model_type in adapter.model_types:
        _REGISTRY[model_type] = instance
    return adapter


def _discover() -> None:
    """Import every family module of this package once (each registers itself)."""
    global _DISCOVERED
    if _DISCOVERED:
        return
    _DISCOVERED = True
    package = importlib.import_module(__package__)
    for module in pkgutil.iter_modules(package.__path__):
        if module.name not in ("base", "check"):
            importlib.import_module(f"{__package__}.{module.name}")


def family_names() -> list[str]:
    """Every registered ``model_type``, in registration order."""
    _discover()
    return list(_REGISTRY)


def families_supporting(operation: str) -> list[str]:
    _discover()
    return [name for name, adapter in _REGISTRY.items() if adapter.supports(operation)]


def model_type_of(model_or_config: Any) -> str:
    """``config.model_type`` of a model or config ("" when it has none)."""
    config = getattr(model_or_config, "config", model_or_config)
    return getattr(config, "model_type", "") or ""


def family_for(model_or_config: Any) -> FamilyAdapter:
    """The adapter for a model, a config or a ``model_type`` string; a StageError names the unknown one."""
    _discover()
    if isinstance(model_or_config, str):
        family = model_or_config
    else:
        family = model_type_of(model_or_config)
    adapter = _REGISTRY.get(family)
    if adapter is None:
        shown = family or type(model_or_config).__name__
        structural = [name for name, known in _REGISTRY.items() if known.operations]
        raise StageError(f"model family {shown!r} is not supported here; supported: {', '.join(structural)}")
    return adapter


def unsupported_message(family: str, operation: str) -> str:
    """``model family 'x' does not support 'op'; families that do: ...``."""
    others = families_supporting(operation)
    adapter = _REGISTRY.get(family)
    why = f" ({adapter.missing})" if adapter is not None and adapter.missing else ""
    return (
        f"model family {family!r} does not support {operation!r}{why}; "
        f"families that do: {', '.join(others) or 'none'}"
    )


def require(model_or_config: Any, operation: str) -> FamilyAdapter:
    """The adapter, if its family supports ``operation``; else a StageError naming the family, the
    operation and the families that support it."""
    adapter = family_for(model_or_config)
    if not adapter.supports(operation):
        family = model_or_config if isinstance(model_or_config, str) else model_type_of(model_or_config)
        raise StageError(unsupported_message(family, operation))
    return adapter
