"""Helpers for the notebook tests (one test file per notebook, so pytest-xdist's file scheduling runs them on
different workers): the code cells of a notebook source are executed in order in one namespace (no Jupyter
needed), with the budget variable set to 1 iteration."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1] / "notebooks"))
import build_notebooks  # noqa: E402

IPYTHON_IMPORT = "from IPython.display import Image, Markdown, display"
NO_IPYTHON = "display = Image = Markdown = lambda *args, **kwargs: None"


def _has_ipython() -> bool:
    try:
        import IPython.display  # noqa: F401
    except ImportError:
        return False
    return True


def run_notebook_at_a_tiny_budget(name, tmp_path, monkeypatch, expected="runs/evaluation.json"):
    monkeypatch.setenv("VMJAX_NOTEBOOK_ITERATIONS", "1")
    monkeypatch.setenv("VMJAX_NOTEBOOK_RUNS", str(tmp_path / "runs"))
    import matplotlib

    matplotlib.use("Agg")
    namespace = {"__name__": "__notebook__"}
    for kind, source in build_notebooks.NOTEBOOKS[name]:
        if kind == "code":
            if not _has_ipython():  # IPython is not a dependency: its display calls become no-ops
                source = source.replace(IPYTHON_IMPORT, NO_IPYTHON)
            exec(compile(source, f"{name} cell", "exec"), namespace)  # noqa: S102
    if expected:  # the file the notebook writes under the runs folder at the end
        assert (tmp_path / expected).is_file()
