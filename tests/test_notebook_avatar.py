"""`notebooks/avatar_premigration.ipynb` runs at a tiny budget, so it does not rot."""

from pathlib import Path

from notebook_runner import build_notebooks, run_notebook_at_a_tiny_budget


def test_avatar_notebook_runs_at_a_tiny_budget(tmp_path, monkeypatch):
    run_notebook_at_a_tiny_budget("avatar_premigration.ipynb", tmp_path, monkeypatch)


def test_every_notebook_has_a_test_file():
    """A notebook added to build_notebooks.NOTEBOOKS needs its own tests/test_notebook_*.py like this one."""
    test_files = {
        "avatar_premigration.ipynb": "test_notebook_avatar.py",
        "avatar_premigration_v1.ipynb": "test_notebook_avatar_v1.py",
        "twin_routing.ipynb": "test_notebook_twin_routing.py",
        "twin_routing_v1.ipynb": "test_notebook_twin_routing_v1.py",
        "twin_split.ipynb": "test_notebook_twin_split.py",
        "twin_split_v1.ipynb": "test_notebook_twin_split_v1.py",
        "cross_reality_privacy.ipynb": "test_notebook_cross_reality_privacy.py",
        "cross_reality_privacy_v1.ipynb": "test_notebook_cross_reality_privacy_v1.py",
        "differentiable.ipynb": "test_notebook_differentiable.py",
    }
    assert set(build_notebooks.NOTEBOOKS) == set(test_files)
    assert all((Path(__file__).parent / name).is_file() for name in test_files.values())
