"""vmjax spaces (with a leading agent axis) as Gymnasium spaces, and actions from Gymnasium back to vmjax.

Two views of one native space:

- per agent (`agent_space`), for PettingZoo: the agent axis removed; Discrete(n, shape=(N,)) -> Discrete(n), a Box
  [N, ...] -> the Box of one row ([N] -> shape (1,)), a Dict -> a Dict of those (a hybrid action);
- joint (`joint_space`), for Gymnasium: the whole world's action as one Dict keyed by the native heads, each with
  the agent axis first: Discrete(n, shape=(N,)) -> MultiDiscrete([n] * N), Box -> Box; a native space that is not a
  Dict becomes the Dict's one key "action".
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from vmjax.core import spaces
from vmjax.interop import INSTALL_HINT

try:
    import gymnasium
except ImportError as error:  # pragma: no cover - the optional dependency is missing
    raise ImportError(INSTALL_HINT) from error

JOINT_KEY = "action"  # the joint Dict's key of a native action space that is not a Dict


def _row(values: np.ndarray, what: str) -> np.ndarray:
    """The one row shared by every agent of a bound [N, ...] (a ValueError when the agents' bounds differ)."""
    values = np.asarray(values, np.float32)
    if not np.all(values == values[:1]):
        raise ValueError(f"{what} differs between agents: the per-agent view needs one space for every agent")
    return values[0]


def agent_space(space: spaces.Space) -> gymnasium.Space:
    """The Gymnasium space of one agent's part of the native `space` (leading agent axis removed)."""
    if isinstance(space, spaces.Dict):
        return gymnasium.spaces.Dict({name: agent_space(sub) for name, sub in space.spaces.items()})
    if isinstance(space, spaces.Discrete):
        return gymnasium.spaces.Discrete(space.n)
    if isinstance(space, spaces.Box):
        low, high = _row(space.low, "Box.low"), _row(space.high, "Box.high")
        if low.ndim == 0:
            low, high = low.reshape(1), high.reshape(1)
        return gymnasium.spaces.Box(low, high, low.shape, np.float32)
    raise TypeError(f"no Gymnasium space for {type(space).__name__}")


def joint_space(space: spaces.Space, top: bool = True) -> gymnasium.Space:
    """The Gymnasium space of the whole native `space`; at the top, actions are always a Dict (`JOINT_KEY`)."""
    if isinstance(space, spaces.Dict):
        return gymnasium.spaces.Dict({name: joint_space(sub, top=False) for name, sub in space.spaces.items()})
    if top:
        return gymnasium.spaces.Dict({JOINT_KEY: joint_space(space, top=False)})
    if isinstance(space, spaces.Discrete):
        return gymnasium.spaces.MultiDiscrete(np.full(space.shape, space.n, np.int64))
    if isinstance(space, spaces.Box):
        return gymnasium.spaces.Box(space.low, space.high, space.shape, np.float32)
    raise TypeError(f"no Gymnasium space for {type(space).__name__}")


def observation_space(space: spaces.Box, per_agent: bool) -> gymnasium.spaces.Box:
    """The native observation Box [N, obs_dim] as Gymnasium's, per agent ([obs_dim]) or whole."""
    if per_agent:
        low, high = _row(space.low, "observation Box.low"), _row(space.high, "observation Box.high")
        return gymnasium.spaces.Box(low, high, low.shape, np.float32)
    return gymnasium.spaces.Box(space.low, space.high, space.shape, np.float32)


# ---------------------------------------------------------------------------------------------- actions
def _leaf(space: spaces.Space, value, shape: tuple, where: str) -> np.ndarray:
    """`value` as a NumPy array of `shape` and the native dtype of `space` (ValueError naming `where`)."""
    array = np.asarray(value)
    squeezed = lambda dims: tuple(d for d in dims if d != 1)
    if array.shape != shape and squeezed(array.shape) == squeezed(shape):
        array = array.reshape(shape)  # only axes of length 1 differ (a per-agent (1,) Box for a native scalar)
    if array.shape != shape:
        shown = (1,) if shape == () and isinstance(space, spaces.Box) else shape  # the per-agent Box's shape
        raise ValueError(f"{where} must have shape {shown}, got {array.shape}")
    if isinstance(space, spaces.Discrete):
        if not np.issubdtype(array.dtype, np.integer):
            raise ValueError(f"{where} must be integer, got dtype {array.dtype}")
        return array.astype(np.int32)
    if not np.issubdtype(array.dtype, np.floating) and not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{where} must be numeric, got dtype {array.dtype}")
    return array.astype(np.float32)


def stack_agent_actions(space: spaces.Space, actions: list, names: list[str], head: str = ""):
    """The native action of the world from one action per agent (`actions[i]` of agent `names[i]`, in the
    per-agent view `agent_space`); keys, shapes and dtypes checked, a ValueError names the agent and the head."""
    if isinstance(space, spaces.Dict):
        for agent, action in zip(names, actions):
            if not isinstance(action, Mapping) or set(action) != set(space.spaces):
                got = sorted(action) if isinstance(action, Mapping) else type(action).__name__
                raise ValueError(f"actions[{agent!r}] must be a dict with keys {sorted(space.spaces)}, got {got}")
        return {
            name: stack_agent_actions(sub, [action[name] for action in actions], names, name)
            for name, sub in space.spaces.items()
        }
    where = lambda agent: f"actions[{agent!r}]" + (f"[{head!r}]" if head else "")
    rows = [_leaf(space, action, space.shape[1:], where(agent)) for agent, action in zip(names, actions)]
    return np.stack(rows).reshape(space.shape)


def joint_action(space: spaces.Space, action, batch: tuple = (), where: str = "action"):
    """The native action from a joint Gymnasium action (`joint_space`), with `batch` leading axes (the vector
    env's worlds); keys, shapes and dtypes checked, a ValueError names the key."""
    keys = sorted(space.spaces) if isinstance(space, spaces.Dict) else [JOINT_KEY]
    if not isinstance(action, Mapping) or set(action) != set(keys):
        got = sorted(action) if isinstance(action, Mapping) else type(action).__name__
        raise ValueError(f"{where} must be a dict with keys {keys}, got {got}")
    if not isinstance(space, spaces.Dict):
        return _leaf(space, action[JOINT_KEY], batch + tuple(space.shape), f"{where}[{JOINT_KEY!r}]")
    return {
        name: _leaf(sub, action[name], batch + tuple(sub.shape), f"{where}[{name!r}]")
        for name, sub in space.spaces.items()
    }


def filler_action(space: spaces.Space, mask_row: np.ndarray | None):
    """One agent's action in the per-agent view of the native `space` (`agent_space`) for an agent that does not
    act: the first allowed value of the discrete head (by `mask_row`), the point of each Box nearest 0."""
    if isinstance(space, spaces.Dict):
        return {name: filler_action(sub, mask_row) for name, sub in space.spaces.items()}
    if isinstance(space, spaces.Discrete):
        return int(np.argmax(mask_row)) if mask_row is not None and mask_row.size else 0
    low, high = _row(space.low, "Box.low"), _row(space.high, "Box.high")
    return np.clip(np.zeros_like(low), low, high).reshape(low.shape or (1,))


__all__ = [
    "JOINT_KEY",
    "agent_space",
    "filler_action",
    "joint_action",
    "joint_space",
    "observation_space",
    "stack_agent_actions",
]
