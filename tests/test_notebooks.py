"""Every notebook runs at a tiny budget, so none of them rots: the code cells of the notebook sources are
executed in order in one namespace (no Jupyter needed), with the budget variable set to 1 iteration."""

import sys
import types

import pytest

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parents[1] / "notebooks"))
import build_notebooks  # noqa: E402


def _display_stub():
    """IPython's display functions when IPython is not installed (it is not a dependency)."""
    module = types.ModuleType("IPython.display")
    module.display = lambda *args, **kwargs: None
    module.Image = module.Markdown = lambda *args, **kwargs: None
    return module


@pytest.mark.parametrize("name", sorted(build_notebooks.NOTEBOOKS))
def test_notebook_runs_at_a_tiny_budget(name, tmp_path, monkeypatch):
    monkeypatch.setenv("VMJAX_NOTEBOOK_ITERATIONS", "1")
    monkeypatch.setenv("VMJAX_NOTEBOOK_RUNS", str(tmp_path / "runs"))
    try:
        import IPython.display  # noqa: F401
    except ImportError:
        monkeypatch.setitem(sys.modules, "IPython", types.ModuleType("IPython"))
        monkeypatch.setitem(sys.modules, "IPython.display", _display_stub())
    import matplotlib

    matplotlib.use("Agg")
    namespace = {"__name__": "__notebook__"}
    for kind, source in build_notebooks.NOTEBOOKS[name]:
        if kind == "code":
            exec(compile(source, f"{name} cell", "exec"), namespace)  # noqa: S102
    assert (tmp_path / "runs" / "evaluation.json").is_file()
