"""Sharded worlds: the world axis of a batch of worlds placed across devices.

Worlds are independent, so a batch of them splits across devices with no communication except where a
computation reduces over worlds (`VecEnv.step`'s "did any world finish" test, a summed reward). The batch stays
one jitted program: its world-axis arrays carry `NamedSharding(mesh, PartitionSpec("worlds"))` and XLA's
partitioner (GSPMD) runs each device's share of the worlds on that device.

    mesh = world_mesh(num_devices=4)  # a 1-D mesh whose axis is named "worlds"
    vec = vmjax.VecEnv(env, num_envs=1024, mesh=mesh)  # every batched output sharded over the mesh
    state = shard_worlds(state, mesh)  # place an existing batch (outside jit) or constrain it (inside)

On a CPU, `XLA_FLAGS=--xla_force_host_platform_device_count=4` (set before JAX starts) gives 4 host devices,
which is how the tests and `python -m bench --devices 1,2,4` run it on one machine.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding, PartitionSpec

WORLD_AXIS = "worlds"
"""The name of the mesh axis that the world axis (the leading axis of a batch of worlds) is split over."""

SEED_AXIS = "seeds"
"""The name of the mesh axis that the seed axis of a seed group's vmapped training state is split over."""

PyTree = Any
_DEVICE_COUNT_FLAG = re.compile(r"--xla_force_host_platform_device_count=\S*")


def world_mesh(num_devices: int | None = None, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh with one axis, "worlds", over `devices` (default: all of `jax.devices()`), or over the first
    `num_devices` of them. The axis is of type Auto, so XLA propagates the world sharding through the
    program (`jax.lax.with_sharding_constraint` needs that)."""
    return _one_axis_mesh(WORLD_AXIS, "world_mesh", num_devices, devices)


def seed_mesh(num_devices: int | None = None, devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh with one axis, "seeds", over `devices` (default: all of `jax.devices()`) or the first
    `num_devices` of them: the mesh of a seed group (`vmjax train --run.seeds K`), whose vmapped training runs
    split their leading seed axis over the devices (`shard_seeds`)."""
    return _one_axis_mesh(SEED_AXIS, "seed_mesh", num_devices, devices)


def _one_axis_mesh(axis: str, caller: str, num_devices: int | None, devices: Sequence[jax.Device] | None) -> Mesh:
    available = list(jax.devices() if devices is None else devices)
    if not available:
        raise ValueError(f"{caller}: devices must name at least one device")
    if num_devices is not None:
        if isinstance(num_devices, bool) or not isinstance(num_devices, int) or num_devices < 1:
            raise ValueError(f"{caller}: num_devices must be a positive integer, got {num_devices!r}")
        if num_devices > len(available):
            raise ValueError(
                f"{caller}: num_devices={num_devices} but only {len(available)} device(s) are available "
                "(on a CPU, set XLA_FLAGS=--xla_force_host_platform_device_count=N before JAX starts)"
            )
        available = available[:num_devices]
    return Mesh(np.array(available), (axis,), axis_types=(AxisType.Auto,))


def world_sharding(mesh: Mesh) -> NamedSharding:
    """`NamedSharding(mesh, PartitionSpec("worlds"))`: the leading (world) axis split over the mesh's "worlds"
    axis, every other axis (and any other mesh axis) replicated."""
    return NamedSharding(mesh, PartitionSpec(WORLD_AXIS))


def check_mesh(mesh: Mesh) -> Mesh:
    """`mesh` itself, after checking that it has a "worlds" axis of type Auto (ValueError otherwise)."""
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh (e.g. vmjax.core.sharding.world_mesh()), got {mesh!r}")
    if WORLD_AXIS not in mesh.axis_names:
        raise ValueError(f"mesh must have an axis named {WORLD_AXIS!r}, got axes {mesh.axis_names}")
    if dict(zip(mesh.axis_names, mesh.axis_types))[WORLD_AXIS] != AxisType.Auto:
        raise ValueError(
            f"the mesh's {WORLD_AXIS!r} axis must be of type AxisType.Auto (world_mesh() makes one; "
            "jax.make_mesh needs axis_types=(AxisType.Auto,))"
        )
    return mesh


def num_world_shards(mesh: Mesh) -> int:
    """How many pieces the world axis is split into: the size of the mesh's "worlds" axis."""
    return int(check_mesh(mesh).shape[WORLD_AXIS])


def check_world_count(num_worlds: int, mesh: Mesh | None, field: str = "num_envs") -> None:
    """ValueError naming `field` unless `num_worlds` splits evenly over the mesh's "worlds" axis (None: one
    device, anything goes). Uneven shards would be padded by XLA, so they are refused instead."""
    if mesh is None:
        return
    shards = num_world_shards(mesh)
    if num_worlds % shards:
        raise ValueError(
            f"{field} must be divisible by the number of devices on the mesh's {WORLD_AXIS!r} axis: "
            f"{field}={num_worlds} is not divisible by {shards}"
        )


def check_world_axes(tree: PyTree, mesh: Mesh, owner: str, hint: str = "", root: str = "") -> None:
    """ValueError naming the leaf (`owner` + its path, `root` for a bare leaf) when a leaf's leading (world) axis
    does not split evenly over the mesh's world axis; `hint` is appended to the message."""
    shards = num_world_shards(mesh)
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        shape = np.shape(leaf)
        if not shape or shape[0] % shards:
            raise ValueError(
                f"{owner}{jax.tree_util.keystr(path) or root} of shape {shape} has no leading world axis "
                f"divisible by the {shards} devices of the mesh's {WORLD_AXIS!r} axis{hint}"
            )


def _is_traced(tree: PyTree) -> bool:
    return any(isinstance(leaf, jax.core.Tracer) for leaf in jax.tree.leaves(tree))


def shard_worlds(tree: PyTree, mesh: Mesh | None) -> PyTree:
    """Every leaf of `tree` (batched over worlds: leading axis = worlds) with its world axis split over `mesh`.

    Outside `jit` this is `jax.device_put` (the arrays move to the devices); inside it is
    `jax.lax.with_sharding_constraint` (the compiled program keeps the world axis split there). Values are
    unchanged. `mesh=None` returns `tree` as it is. ValueError naming the leaf when a leading axis does not
    split evenly over the mesh."""
    if mesh is None:
        return tree
    check_world_axes(tree, mesh, "shard_worlds: leaf ", root="(root)")
    sharding = world_sharding(mesh)
    if _is_traced(tree):
        return jax.lax.with_sharding_constraint(tree, sharding)
    return jax.device_put(tree, sharding)


def replicate(tree: PyTree, mesh: Mesh | None) -> PyTree:
    """Every leaf of `tree` copied whole to every device of `mesh` (shared data: params, a single key); `tree`
    as it is for `mesh=None`. `device_put` outside `jit`, a sharding constraint inside."""
    if mesh is None:
        return tree
    sharding = NamedSharding(mesh, PartitionSpec())
    if _is_traced(tree):
        return jax.lax.with_sharding_constraint(tree, sharding)
    return jax.device_put(tree, sharding)


def shard_seeds(tree: PyTree, mesh: Mesh | None) -> PyTree:
    """Every leaf of `tree` (stacked over a seed group: leading axis = seeds) with that axis split over the
    "seeds" axis of `mesh` (`seed_mesh`), outside `jit`; `tree` as it is for `mesh=None`. ValueError naming the
    leaf when its leading axis does not split evenly."""
    if mesh is None:
        return tree
    if SEED_AXIS not in mesh.axis_names:
        raise ValueError(f"shard_seeds: mesh must have an axis named {SEED_AXIS!r}, got axes {mesh.axis_names}")
    shards = mesh.shape[SEED_AXIS]
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if np.ndim(leaf) == 0 or np.shape(leaf)[0] % shards:
            raise ValueError(
                f"shard_seeds: leaf {jax.tree_util.keystr(path) or '(root)'} of shape {np.shape(leaf)} has no "
                f"leading seed axis that splits over {shards} devices"
            )
    return jax.device_put(tree, NamedSharding(mesh, PartitionSpec(SEED_AXIS)))


def is_world_sharded(array: jax.Array, mesh: Mesh, axis: int = 0) -> bool:
    """True when `array` is laid out as `shard_worlds` lays it: one equal slice of its world axis (`axis`: 0 for
    a batch, 1 for a rollout's [steps, worlds] output) on each device of the mesh."""
    shards = getattr(array, "addressable_shards", None)
    if not shards or set(array.sharding.device_set) != set(mesh.devices.flat):
        return False
    size = array.shape[axis] // num_world_shards(mesh)
    starts = sorted({shard.index[axis].start or 0 for shard in shards})
    return all(shard.data.shape[axis] == size for shard in shards) and starts == list(range(0, array.shape[axis], size))


_BATCH_MESH: contextvars.ContextVar[Mesh | None] = contextvars.ContextVar("vmjax_batch_mesh", default=None)


@contextlib.contextmanager
def sharded_batches(mesh: Mesh | None) -> Iterator[None]:
    """Within this block, `split_batch` splits traced batches over `mesh` (None: it changes nothing). The
    trainer skeleton traces a data-parallel run inside it, so the learners' shared helpers (PPO minibatches,
    replay samples) need no mesh argument."""
    token = _BATCH_MESH.set(None if mesh is None else check_mesh(mesh))
    try:
        yield
    finally:
        _BATCH_MESH.reset(token)


def split_batch(tree: PyTree, axis: int = 0) -> PyTree:
    """`tree` with the sample axis `axis` of every leaf split over the "worlds" axis of the mesh of the enclosing
    `sharded_batches` block (a sharding constraint: each device computes a loss on its share of the samples and
    XLA sums the gradients across devices). Unchanged outside such a block, outside `jit`, or when a leaf's
    `axis` does not split evenly (the partitioner then lays it out as it likes; the values are the same)."""
    mesh = _BATCH_MESH.get()
    if mesh is None or not _is_traced(tree):
        return tree
    shards = num_world_shards(mesh)

    def split(leaf):
        if np.ndim(leaf) <= axis or np.shape(leaf)[axis] % shards:
            return leaf
        spec = PartitionSpec(*([None] * axis), WORLD_AXIS)
        return jax.lax.with_sharding_constraint(leaf, NamedSharding(mesh, spec))

    return jax.tree.map(split, tree)


def host_devices_environ(num_devices: int, environ: Mapping[str, str]) -> dict[str, str]:
    """A copy of `environ` for a subprocess whose JAX sees `num_devices` CPU devices: XLA_FLAGS with
    `--xla_force_host_platform_device_count=num_devices` (replacing any earlier count, other flags kept) and
    JAX_PLATFORMS=cpu. The count is read once, when JAX starts, hence a subprocess."""
    flags = _DEVICE_COUNT_FLAG.sub("", environ.get("XLA_FLAGS", "")).split()
    flags.append(f"--xla_force_host_platform_device_count={num_devices}")
    return {**environ, "XLA_FLAGS": " ".join(flags), "JAX_PLATFORMS": "cpu"}
