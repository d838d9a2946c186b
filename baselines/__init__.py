"""Comparison methods from the papers, built on vmjax (heuristics first)."""
