"""Test-session settings: the suite is dominated by XLA compile time on CPU, so compile with the cheap
backend passes (the results are the same programs; only their machine code is less optimised), and keep one
persistent compilation cache for the session, so a program compiled twice (a run's `trainer.init` in
`cli.train` and again in `cli.load_run`, a resumed run's chunk) is compiled once. The cache is a fresh
folder per session (pytest-xdist's workers inherit it from the controller, which removes it at exit): a
cached program is the one the same jaxpr and flags would compile to, so no test sees a different result."""

import atexit
import os
import shutil
import tempfile

_FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _FAST_COMPILE).strip()

if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):  # set before jax is imported, which reads it
    _cache_dir = tempfile.mkdtemp(prefix="vmjax-tests-xla-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache_dir
    atexit.register(shutil.rmtree, _cache_dir, ignore_errors=True)
