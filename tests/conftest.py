"""Test-session settings: the suite is dominated by XLA compile time on CPU, so compile with the cheap
backend passes (the results are the same programs; only their machine code is less optimised)."""

import os

_FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FAST_COMPILE).strip()
