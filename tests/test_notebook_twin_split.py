"""`notebooks/twin_split.ipynb` runs at a tiny budget, so it does not rot."""

from notebook_runner import run_notebook_at_a_tiny_budget


def test_twin_split_notebook_runs_at_a_tiny_budget(tmp_path, monkeypatch):
    run_notebook_at_a_tiny_budget("twin_split.ipynb", tmp_path, monkeypatch)
