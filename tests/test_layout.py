"""The package's shape, checked from its source: no import cycles, a small package root, library code free
of the run machinery, and the task seam (few modules outside the task code know the input is token ids).

Imports are read with ``ast``, not by importing: every import of a compress module counts, at module level,
inside functions and under ``if TYPE_CHECKING:``, since each is a dependency a reader must follow.
"""

from __future__ import annotations

import ast
import dataclasses
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "compress"

MAX_ROOT_MODULES = 8
RUN_MACHINERY = {"StageConfig", "RunContext"}
RUN_LEVEL = ("compress/core/", "compress/stages/", "compress/run/")
"""Where the run machinery lives: the stage base and context (core), the stages, the pipeline that drives them."""
RUN_RECORD = ("compress/reporting/build.py", "compress/reporting/write.py")
"""They turn a finished run (its context) into report.json and its views; the report stage calls them."""
TASK_PACKAGES = ("compress/tasks/", "compress/data/", "compress/vocabulary/")
TASK_WORDS = re.compile(r"tokenizer_dir|TextEncoder|input_ids|pad_id|\.texts\b")
MAX_TASK_AWARE_MODULES = 8


def module_names(package: Path) -> dict[str, Path]:
    """``compress.core.stage`` -> its file; a package's name maps to its ``__init__.py``."""
    names = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def imported_modules(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package modules ``name`` imports anywhere in its file (``from pkg import module`` names the
    module, ``from module import thing`` the module)."""
    root = next(iter(known)).split(".")[0]
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name if is_package else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    anchor = anchor.rpartition(".")[0]
                base = f"{anchor}.{base}" if base else anchor
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and target.split(".")[0] == root:
                found.add(target)
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    known = module_names(package)
    return {name: imported_modules(name, path, known) for name, path in known.items()}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph[node]):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return cycles


def relative(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


def test_the_walker_sees_imports_inside_functions_and_type_checking_blocks(tmp_path):
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("def f():\n    from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.c import thing\n"
    )
    (package / "c.py").write_text("from .a import f\nthing = 1\n")
    (package / "d.py").write_text("import pkg.a\n")
    graph = import_graph(package)
    assert graph["pkg.a"] == {"pkg.sub.b"} and graph["pkg.sub.b"] == {"pkg.c"} and graph["pkg.c"] == {"pkg.a"}
    assert import_cycles(graph) == [["pkg.a", "pkg.c", "pkg.sub.b"]]


def test_no_import_cycles():
    cycles = import_cycles(import_graph(PACKAGE))
    assert cycles == [], "import cycles: " + "; ".join(" <-> ".join(cycle) for cycle in cycles)


def test_few_modules_at_the_package_root():
    root_modules = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(root_modules) <= MAX_ROOT_MODULES, root_modules


def test_library_code_does_not_import_the_run_machinery():
    """Training, pruning, distillation, quantization, evaluation ... take explicit values (splits, a seed, a
    log callable) and declare plain ``Options``; only the run layer knows ``RunContext`` and ``StageConfig``."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        where = relative(path)
        if where.startswith(RUN_LEVEL) or where in RUN_RECORD:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("compress"):
                offenders += [f"{where}: {alias.name}" for alias in node.names if alias.name in RUN_MACHINERY]
    assert offenders == []


def test_stages_declare_strict_options_and_run_on_the_stage_context():
    from compress.core.context import RunContext
    from compress.core.options import Options
    from compress.core.stage import StageContext, stage_registry

    for kind, stage in stage_registry().items():
        assert issubclass(stage.Config, Options), kind
        assert stage.Config.model_config.get("extra") == "forbid", kind
        assert stage.Config.model_config.get("allow_inf_nan") is False, kind
    declared = {name for name, value in vars(StageContext).items() if callable(value) or isinstance(value, property)}
    members = set(StageContext.__annotations__) | {name for name in declared if not name.startswith("_")}
    assert {"recipe", "run_dir", "console", "seed", "stage_dir", "add_variant", "variant"} <= members
    fields = {field.name for field in dataclasses.fields(RunContext)}
    assert sorted(m for m in members if m not in fields and not hasattr(RunContext, m)) == []


def test_few_modules_outside_the_task_code_know_inputs_are_token_ids():
    """The task seam: tokenizers, token ids and texts belong to compress/tasks (and the data and vocabulary
    code it builds on); the rest asks the task."""
    aware = sorted(
        relative(path)
        for path in PACKAGE.rglob("*.py")
        if not relative(path).startswith(TASK_PACKAGES) and TASK_WORDS.search(path.read_text(encoding="utf-8"))
    )
    assert len(aware) <= MAX_TASK_AWARE_MODULES, f"{len(aware)} modules: {aware}"


def test_the_stage_base_needs_neither_recipe_nor_run_context():
    graph = import_graph(PACKAGE)
    assert "compress.core.stage" in graph["compress.core.recipe"]  # the recipe validates against the registry
    assert not graph["compress.core.stage"] & {"compress.core.recipe", "compress.core.context"}
