"""`notebooks/differentiable.ipynb` (it reads and plots the committed design results) runs, so it does not rot."""

from notebook_runner import run_notebook_at_a_tiny_budget


def test_differentiable_notebook_runs(tmp_path, monkeypatch):
    run_notebook_at_a_tiny_budget("differentiable.ipynb", tmp_path, monkeypatch, expected=None)
