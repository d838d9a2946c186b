"""Experiments on top of the runner (like bench): the paper-budget studies of the -v1 scenarios."""
