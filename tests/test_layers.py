"""The package's layers import one way only, and no module-level import cycle exists anywhere:

    core -> net -> mobility -> predict -> envs -> agents -> baselines -> scenarios -> runner, render -> cli, interop
    -> bench

A module may import its own layer and the layers below it, never above. The walk reads every module's source
(vmjax/, baselines/, bench/) and follows its module-level imports (function-level imports are allowed: they run
on call, not on import)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
PACKAGES = ("vmjax", "baselines", "bench")
LAYERS = (  # (module prefix, layer); the longest matching prefix wins
    ("vmjax.core", 0),
    ("vmjax.report", 0),
    ("vmjax.net", 1),
    ("vmjax.mobility", 2),
    ("vmjax.predict", 3),
    ("vmjax.envs", 4),
    ("vmjax", 4),  # the package's own __init__ registers the envs: it sits with them
    ("vmjax.agents", 5),
    ("baselines", 6),
    ("vmjax.scenarios", 7),
    ("vmjax.runner", 8),
    ("vmjax.render", 8),  # draws a scenario's frames (its `Scenario.scene`); animates a run's episode
    ("vmjax.cli", 9),
    ("vmjax.interop", 9),  # PettingZoo / Gymnasium adapters on top of the package (optional dependencies)
    ("bench", 10),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def layer_of(module: str) -> int:
    matches = [(len(prefix), layer) for prefix, layer in LAYERS if module == prefix or module.startswith(prefix + ".")]
    if not matches:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS in {Path(__file__).name}")
    return max(matches)[1]


def _module_level_statements(body):
    """Statements run when the module is imported: the top level, and inside module-level if / try / with."""
    for node in body:
        yield node
        if isinstance(node, (ast.If, ast.Try, ast.With)):
            nested = [*node.body, *getattr(node, "orelse", []), *getattr(node, "finalbody", [])]
            nested += [stmt for handler in getattr(node, "handlers", []) for stmt in handler.body]
            yield from _module_level_statements(nested)


def module_level_imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The project modules `path` imports at module level (`from package import submodule` names the submodule)."""
    tree = ast.parse(path.read_text(), str(path))
    found = set()
    for node in _module_level_statements(tree.body):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in modules else node.module)
    return {name for name in found if name.split(".")[0] in PACKAGES}


def import_graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: module_level_imports(path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of `graph` as [a, b, ..., a], or None (iterative depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            child = next(stack[-1], None)
            if child is None:
                state[path.pop()] = 2
                stack.pop()
            elif child not in graph or state.get(child) == 2:
                continue
            elif state.get(child) == 1:
                return path[path.index(child) :] + [child]
            else:
                state[child] = 1
                path.append(child)
                stack.append(iter(sorted(graph[child])))
    return None


def test_imports_go_down_the_layers_only():
    upward = []
    for module, imported in sorted(import_graph().items()):
        for name in sorted(imported):
            if layer_of(name) > layer_of(module):
                upward.append(f"{module} (layer {layer_of(module)}) imports {name} (layer {layer_of(name)})")
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_module_level_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_checks_can_fail():
    """The walk sees an upward import and a cycle when there is one (so the two tests above can fail)."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert layer_of("baselines.twin_split") > layer_of("vmjax.envs.twin_split")
    assert layer_of("vmjax.cli") > layer_of("vmjax.runner") > layer_of("vmjax.scenarios.twin_split")
    graph = import_graph()
    assert "vmjax.scenarios.base" in graph["vmjax.scenarios.twin_split"]
    assert "vmjax.agents.ppo" in graph["vmjax.agents.hybrid_mappo"]  # `from vmjax.agents import ppo` = a submodule


@pytest.mark.parametrize("forbidden", ["vmjax.cli", "vmjax.runner", "vmjax.scenarios"])
def test_baselines_import_no_cli_runner_or_registry(forbidden):
    """Also at function level: baselines are the papers' methods, below the registry that lists them."""
    for path in sorted((ROOT / "baselines").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            assert not any(n == forbidden or n.startswith(forbidden + ".") for n in names), f"{path.name}: {forbidden}"
