"""`notebooks/cross_reality_privacy.ipynb` runs at a tiny budget, so it does not rot."""

from notebook_runner import run_notebook_at_a_tiny_budget


def test_cross_reality_privacy_notebook_runs_at_a_tiny_budget(tmp_path, monkeypatch):
    run_notebook_at_a_tiny_budget("cross_reality_privacy.ipynb", tmp_path, monkeypatch)
