"""Typed recipe configuration: YAML in, validated objects out, or one clear error naming field and file."""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from compress.core.files import check_plain_name
from compress.core.options import Options
from compress.core.sections import DataConfig, ModelConfig, TaskConfig
from compress.core.stage import ONNX, OPENVINO, TORCH, Stage, get_stage, stage_registry
from compress.errors import RecipeError

RUNTIME_WORDS = {TORCH: "a PyTorch model", ONNX: "an ONNX model", OPENVINO: "an OpenVINO IR"}
MAX_RECIPE_BYTES = 1 << 20
MAX_RECIPE_NODES = 100_000
"""Bounds on a recipe file: its size, and its YAML nodes counted with every alias expanded (a few hundred
bytes of nested aliases, a "billion laughs", would otherwise expand to billions of nodes)."""
RESERVED_STAGE_IDS = frozenset({"input", "model", "data", "name", "description", "seed", "stages"})
"""``input`` is the loaded model's place in a run's completed stages (``pipeline.INPUT_STAGE``); the rest
are recipe sections, which ``--set`` could no longer reach."""


class RecipeModel(Options):
    name: str = Field(description="Recipe name; also names the default run directory runs/<name>-<time>.")
    description: str = ""
    seed: int = 0
    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    task: TaskConfig = TaskConfig()
    stages: list[Any] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _plain_name(cls, value: str) -> str:
        return check_plain_name(value)


@dataclass(frozen=True)
class StageSpec:
    """One validated stage of a recipe."""

    id: str
    kind: str
    config: Options
    start_from: str | None = None
    """Variant the stage works on (the recipe's ``from:``); ``None`` means the current (last produced) one."""

    def __post_init__(self) -> None:
        _check_stage_id(self.id, f"stage {self.kind}: id")  # it names the stage's folder in the run directory

    def build(self) -> Stage:
        cls = get_stage(self.kind)
        assert cls is not None
        return cls(self.config, self.id)


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    seed: int
    model: ModelConfig
    data: DataConfig
    stages: tuple[StageSpec, ...]
    source: str
    """Where the recipe came from (a path), for messages."""
    written: dict[str, Any] = field(default_factory=dict, compare=False)
    """The recipe as the user wrote it (overrides applied), before defaults were filled in."""
    task: TaskConfig = field(default_factory=TaskConfig)
    overrides: tuple[str, ...] = field(default=(), compare=False)
    """The ``--set`` overrides applied to the file, as given (reports show the recipe as it ran)."""

    def __post_init__(self) -> None:
        try:
            check_plain_name(self.name)  # it names the default run directory, runs/<name>-<time>
        except ValueError as error:
            raise RecipeError(f"{self.source}: name: {error} (got {self.name!r})") from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "seed": self.seed,
            "model": self.model.model_dump(),
            "data": self.data.model_dump(),
            "task": self.task.model_dump(),
            "stages": [
                {s.kind: {"id": s.id, **_from_option(s), **s.config.model_dump()}} for s in self.stages
            ],
        }

    @property
    def hash(self) -> str:
        """Identifies the recipe a run directory belongs to (for resuming).

        Hashes what the user wrote, not the filled-in defaults, so a toolkit version that adds an
        option with a default can still resume runs started before it.
        """
        blob = json.dumps(self.written or self.to_dict(), sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


def _from_option(spec: StageSpec) -> dict[str, str]:
    return {"from": spec.start_from} if spec.start_from else {}


def _did_you_mean(word: str, options: list[str] | set[str]) -> str:
    close = difflib.get_close_matches(str(word), sorted(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _describe_validation_error(
    error: ValidationError, where: str, model: type[BaseModel], prefix: str = ""
) -> str:
    lines = []
    for item in error.errors():
        loc = ".".join(str(part) for part in item["loc"])
        field = f"{prefix}{loc}" if loc else prefix.rstrip(".")
        if item["type"] == "extra_forbidden":
            known = _fields_at(model, item["loc"][:-1])
            hint = _did_you_mean(item["loc"][-1], known)
            lines.append(f"unknown field {field!r}{hint}; allowed: {', '.join(sorted(known))}")
        else:
            got = item.get("input")
            shown = "" if isinstance(got, dict | list) or got is None else f" (got {got!r})"
            lines.append(f"{field}: {item['msg'].removeprefix('Value error, ')}{shown}")
    return f"{where}: " + "; ".join(lines)


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> set[str]:
    current: Any = model
    for part in loc:
        field = getattr(current, "model_fields", {}).get(part)
        annotation = getattr(field, "annotation", None)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            current = annotation
    return set(getattr(current, "model_fields", {}))


def _parse_override(text: str) -> tuple[list[str], Any]:
    if "=" not in text:
        raise RecipeError(f"--set {text!r}: expected SECTION.FIELD=VALUE, e.g. finetune.epochs=1")
    key, raw = text.split("=", 1)
    path = [part for part in key.strip().split(".") if part]
    if len(path) < 2:
        raise RecipeError(f"--set {text!r}: expected SECTION.FIELD=VALUE, e.g. finetune.epochs=1")
    try:
        value = _load_yaml(raw, f"--set {text!r}") if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return path, value


def _stage_entries(raw_stages: list[Any], where: str) -> list[tuple[str, dict[str, Any]]]:
    """Normalise ``- finetune`` and ``- finetune: {...}`` entries into (kind, options) pairs."""
    entries = []
    for index, entry in enumerate(raw_stages):
        if isinstance(entry, str):
            entries.append((entry, {}))
        elif isinstance(entry, dict) and len(entry) == 1:
            kind, options = next(iter(entry.items()))
            if options is None:
                options = {}
            if not isinstance(options, dict):
                raise RecipeError(f"{where}: stages[{index}] ({kind}): options must be a mapping, got {options!r}")
            entries.append((str(kind), dict(options)))
        else:
            raise RecipeError(
                f"{where}: stages[{index}] must be a stage name or a one-key mapping like "
                f"'- finetune: {{epochs: 2}}', got {entry!r}"
            )
    return entries


def _stage_ids(entries: list[tuple[str, dict[str, Any]]], where: str) -> list[str]:
    """Each stage's id: its ``id:`` option (a plain name, as it names the stage's folder), else its kind
    numbered from the second of a kind on (``export``, ``export2``)."""
    ids, seen = [], {}
    for index, (kind, options) in enumerate(entries):
        explicit = options.get("id")
        if explicit is not None:
            ids.append(_check_stage_id(explicit, f"{where}: stages[{index}] ({kind}).id"))
            continue
        seen[kind] = seen.get(kind, 0) + 1
        ids.append(kind if seen[kind] == 1 else f"{kind}{seen[kind]}")
    return ids


def _check_stage_id(value: Any, field: str) -> str:
    if not isinstance(value, str):
        raise RecipeError(f"{field}: expected a plain name (a string), got {value!r}")
    try:
        check_plain_name(value)
    except ValueError as error:
        raise RecipeError(f"{field}: {error} (got {value!r})") from None
    if value in RESERVED_STAGE_IDS:
        raise RecipeError(f"{field}: {value!r} is reserved ({', '.join(sorted(RESERVED_STAGE_IDS))}); choose another id")
    return value


def apply_overrides(raw: dict[str, Any], overrides: list[str], where: str) -> dict[str, Any]:
    """Apply ``--set a.b=value`` overrides to the raw recipe mapping (stage ids or top-level sections)."""
    if not overrides:
        return raw
    raw = json.loads(json.dumps(raw, default=str))
    stages = raw.get("stages")
    entries = _stage_entries(stages, where) if isinstance(stages, list) else []
    ids = _stage_ids(entries, where)
    for text in overrides:
        path, value = _parse_override(text)
        head = path[0]
        if head in ids:
            index = ids.index(head)
            kind, options = entries[index]
            target = options
            entries[index] = (kind, options)
        elif head in RecipeModel.model_fields and head != "stages":
            target = raw.setdefault(head, {})
            if not isinstance(target, dict):
                raise RecipeError(f"--set {text!r}: {head!r} is not a section")
        else:
            known = set(ids) | {"model", "data", "task"}
            raise RecipeError(f"--set {text!r}: no stage or section named {head!r}{_did_you_mean(head, known)}")
        for depth, part in enumerate(path[1:-1], start=2):
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise RecipeError(
                    f"--set {text!r}: {'.'.join(path[:depth])} is not a section (it holds {target!r}), "
                    "so it has no field to set"
                )
        target[path[-1]] = value
    if isinstance(stages, list):
        raw["stages"] = [{kind: options} for kind, options in entries]
    return raw


def parse_recipe(raw: Any, where: str = "<recipe>", overrides: list[str] | None = None) -> Recipe:
    """Validate a raw recipe mapping into a :class:`Recipe`, raising :class:`RecipeError` on any problem."""
    if not isinstance(raw, dict):
        raise RecipeError(f"{where}: a recipe must be a YAML mapping with 'name' and 'stages', got {type(raw).__name__}")
    raw = apply_overrides(raw, overrides or [], where)
    try:
        top = RecipeModel.model_validate(raw)
    except ValidationError as error:
        raise RecipeError(_describe_validation_error(error, where, RecipeModel)) from None
    _check_task_kind(top.task.kind, where)

    entries = _stage_entries(top.stages, where)
    ids = _stage_ids(entries, where)
    if len(set(ids)) != len(ids):
        raise RecipeError(f"{where}: stage ids must be unique, got {ids}")
    registry = stage_registry()
    specs = []
    runtime, made_by = TORCH, "the input"
    known_runtimes = {top.model.name: TORCH}
    for index, ((kind, options), stage_id) in enumerate(zip(entries, ids, strict=True)):
        cls = registry.get(kind)
        if cls is None:
            raise RecipeError(
                f"{where}: stages[{index}]: unknown stage {kind!r}{_did_you_mean(kind, registry)}; "
                f"available: {', '.join(sorted(registry))}"
            )
        start_from = options.get("from")
        if start_from is not None and (not isinstance(start_from, str) or not start_from.strip()):
            raise RecipeError(
                f"{where}: stages[{index}] ({kind}).from: expected a variant name, got {start_from!r}"
            )
        options = {k: v for k, v in options.items() if k not in ("id", "from")}
        try:
            config = cls.Config.model_validate(options)
        except ValidationError as error:
            message = _describe_validation_error(error, where, cls.Config, prefix=f"stages[{index}] ({kind}).")
            raise RecipeError(message) from None
        checked = start_from is None or start_from in known_runtimes
        if start_from is not None and checked:
            runtime, made_by = known_runtimes[start_from], f"variant {start_from!r}"
        # Default names (``teacher-onnx`` ...) are only known at run time, where the pipeline checks them.
        accepted = cls.accepted_runtimes(config)
        if checked and runtime not in accepted:
            needed = " or ".join(RUNTIME_WORDS[r] for r in sorted(accepted))
            raise RecipeError(
                f"{where}: stages[{index}] ({kind}) needs {needed}, but after {made_by} the model is "
                f"{RUNTIME_WORDS[runtime]}; move {kind!r} before the stage that converted it"
            )
        produced = cls.produced_runtime(config)
        if produced is not None:
            runtime, made_by = produced, f"stage {stage_id!r}"
            explicit_name = getattr(config, "name", None)
            if explicit_name:
                known_runtimes[explicit_name] = produced
        specs.append(StageSpec(id=stage_id, kind=kind, config=config, start_from=start_from))
    return Recipe(
        name=top.name,
        description=top.description,
        seed=top.seed,
        model=top.model,
        data=top.data,
        stages=tuple(specs),
        source=where,
        written=json.loads(json.dumps(raw, default=str)),
        task=top.task,
        overrides=tuple(overrides or ()),
    )


def _check_task_kind(kind: str, where: str) -> None:
    from compress.tasks import task_names

    if kind not in task_names():
        raise RecipeError(f"{where}: task.kind: unknown task {kind!r}{_did_you_mean(kind, task_names())}; "
                          f"known tasks: {', '.join(task_names())}")


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read and validate a recipe file. Bundled recipe names (``compress recipes``) work too."""
    resolved = resolve_recipe_path(path)
    size = resolved.stat().st_size
    if size > MAX_RECIPE_BYTES:
        raise RecipeError(f"{resolved}: {size:,} bytes; a recipe may be at most {MAX_RECIPE_BYTES:,} bytes")
    try:
        text = resolved.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise RecipeError(f"{resolved}: not a text file (it is not valid UTF-8)") from None
    try:
        raw = _load_yaml(text, str(resolved))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error).splitlines()[0]
        raise RecipeError(f"{resolved}: not valid YAML{at}: {problem}") from None
    return parse_recipe(raw, str(resolved), overrides)


class _RecipeLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key repeated in one mapping (YAML would silently keep the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        first_line: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # ``<<: *base`` then overriding keys is intended
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                repeated = key in first_line
            except TypeError:  # an unhashable key: the base constructor says so
                continue
            line = key_node.start_mark.line + 1
            if repeated:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} at lines {first_line[key]} and {line}; keep only one",
                    key_node.start_mark,
                )
            first_line[key] = line
        return super().construct_mapping(node, deep=deep)


def _load_yaml(text: str, where: str) -> Any:
    """Parse one YAML document, refusing recipes that expand beyond :data:`MAX_RECIPE_NODES` nodes or
    refer to themselves, before any Python object is built."""
    loader = _RecipeLoader(text)
    try:
        try:
            node = loader.get_single_node()
        except RecursionError:
            raise RecipeError(f"{where}: YAML nested too deeply to be a recipe") from None
        if node is None:
            return None
        _check_expanded_size(node, where)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_expanded_size(root: yaml.Node, where: str) -> None:
    """Count ``root``'s nodes as the tree its aliases stand for, in time linear in the file (shared
    nodes are counted once and their total reused)."""
    totals: dict[int, int] = {}
    open_nodes: set[int] = set()

    def count(node: yaml.Node) -> int:
        if id(node) in totals:
            return totals[id(node)]
        if id(node) in open_nodes:
            line = node.start_mark.line + 1
            raise RecipeError(f"{where}: the list or mapping at line {line} contains an alias of itself")
        open_nodes.add(id(node))
        total = 1
        for child in _children(node):
            total += count(child)
            if total > MAX_RECIPE_NODES:
                raise RecipeError(
                    f"{where}: expands to more than {MAX_RECIPE_NODES:,} YAML values once its aliases (&name / *name) "
                    "are expanded; a recipe is refused beyond that"
                )
        open_nodes.discard(id(node))
        totals[id(node)] = total
        return total

    try:
        count(root)
    except RecursionError:
        raise RecipeError(f"{where}: YAML nested too deeply to be a recipe") from None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def bundled_recipes_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "recipes"


def resolve_recipe_path(path: str | Path) -> Path:
    candidate = Path(path)
    if candidate.is_file():
        return candidate
    for bundled in (bundled_recipes_dir() / f"{path}.yaml", bundled_recipes_dir() / str(path)):
        if bundled.is_file():
            return bundled
    if candidate.is_dir():
        raise RecipeError(f"{path}: is a directory, expected a recipe .yaml file")
    raise RecipeError(f"{path}: recipe file not found", hint="'compress recipes' lists the bundled recipes")


def bundled_recipes() -> list[tuple[str, str]]:
    """(name, first sentence of description) for each recipe shipped in ``recipes/``."""
    found = []
    for path in sorted(bundled_recipes_dir().glob("*.yaml")):
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError:
            raw = {}
        text = " ".join(str(raw.get("description", "")).split()) if isinstance(raw, dict) else ""
        found.append((path.stem, text.split(". ")[0].rstrip(".") + "." if text else ""))
    return found
