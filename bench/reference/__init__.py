"""Reference implementations written the way such tools usually are, for side-by-side benchmarks.

- `numpy_avatar`: AvatarPremigration-v0 in NumPy, a gymnasium-style per-world env
  (`AvatarPremigrationNumpy`) and a batched one stepping many worlds as arrays
  (`BatchedAvatarPremigrationNumpy`); `tests/test_reference_env.py` shows both do the same work as the
  JAX env (same observations, rewards and latency terms when fed the same random draws).
- `torch_hybrid_mappo`: a PyTorch (CPU) Hybrid-MAPPO trainer over a list of per-world NumPy envs
  (needs the optional `bench` extra: `pip install -e '.[bench]'`).

Neither module imports vmjax or JAX: they stand for what a researcher would write without vmjax.
"""

from bench.reference.numpy_avatar import (
    AvatarPremigrationNumpy,
    BatchedAvatarPremigrationNumpy,
    EpisodeDraws,
    MobilityParams,
    ReferenceConfig,
    ReferenceParams,
    RsuDraws,
    SlotDraws,
)

__all__ = [
    "AvatarPremigrationNumpy",
    "BatchedAvatarPremigrationNumpy",
    "EpisodeDraws",
    "MobilityParams",
    "ReferenceConfig",
    "ReferenceParams",
    "RsuDraws",
    "SlotDraws",
]
