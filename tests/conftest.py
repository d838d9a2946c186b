"""Test-session settings: the suite is dominated by XLA compile time on CPU, so compile with the cheap
backend passes (the results are the same programs; only their machine code is less optimised), and keep one
persistent compilation cache for the session, so a program compiled twice (a run's `trainer.init` in
`cli.train` and again in `cli.load_run`, a resumed run's chunk) is compiled once. The cache is a fresh
folder per session (pytest-xdist's workers inherit it from the controller, which removes it at exit): a
cached program is the one the same jaxpr and flags would compile to, so no test sees a different result."""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile

_FAST_COMPILE = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
# the CPU backend's elemental emitters compile the tiny test programs 2-3x faster than its MLIR fusion emitters
# (the same HLO and fusions, only the code generator differs); XLA aborts on a flag it does not know, so the
# flag is kept only where this jaxlib's XLA accepts it (one jax import in a subprocess, once per session)
_EMITTERS = "--xla_cpu_use_fusion_emitters=false"


def _xla_accepts(flags: str) -> bool:
    probe = [sys.executable, "-c", "import jax; jax.devices()"]
    env = dict(os.environ, XLA_FLAGS=flags, JAX_PLATFORMS="cpu")
    return subprocess.run(probe, env=env, capture_output=True, timeout=300).returncode == 0


if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    _flags = (os.environ.get("XLA_FLAGS", "") + " " + _FAST_COMPILE).strip()
    if _xla_accepts(_flags + " " + _EMITTERS):
        _flags += " " + _EMITTERS
    os.environ["XLA_FLAGS"] = _flags

if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):  # set before jax is imported, which reads it
    _cache_dir = tempfile.mkdtemp(prefix="vmjax-tests-xla-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache_dir
    atexit.register(shutil.rmtree, _cache_dir, ignore_errors=True)
