"""`notebooks/cross_reality_privacy_v1.ipynb` (it reads and plots the committed v1 results) runs, so it does not rot."""

from notebook_runner import run_notebook_at_a_tiny_budget


def test_cross_reality_privacy_v1_notebook_runs(tmp_path, monkeypatch):
    run_notebook_at_a_tiny_budget("cross_reality_privacy_v1.ipynb", tmp_path, monkeypatch, expected=None)
