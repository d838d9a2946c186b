"""`notebooks/twin_routing.ipynb` runs at a tiny budget, so it does not rot."""

from notebook_runner import run_notebook_at_a_tiny_budget


def test_twin_routing_notebook_runs_at_a_tiny_budget(tmp_path, monkeypatch):
    run_notebook_at_a_tiny_budget("twin_routing.ipynb", tmp_path, monkeypatch)
