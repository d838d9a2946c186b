"""Look at a world: one frame (`frame`), an episode of a policy as a GIF (`animate`), a run's held-out episode
(`render_run`, what `vmjax render RUN_DIR` calls).

    from vmjax import render
    fig = render.frame(env, state, params)  # one world's slot, drawn with matplotlib (headless: no pyplot)
    render.render_run("runs/twin_routing", out="episode.gif", policy="greedy")

What a frame shows comes from the scenario's registry entry (`Scenario.scene`, in `vmjax/scenarios/<name>.py`), a
`vmjax.core.scene.Scene`; this module draws any scene the same way: roads in grey, servers as squares (RSU),
triangles (UAV), a star (satellite) or a cloud, coloured by their load (0-100% of capacity), absent ones faint;
vehicles as dots, a solid arrow to the server they are served by and a dashed arrow to the server the slot's action
sends their work to (pre-migration / migration target); a dotted arrow from a true to a reported location; the
scenario's quantities as text under the map.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from vmjax import mobility, runner, scenarios
from vmjax.core.rollout import StatefulPolicy, stateless
from vmjax.core.scene import Scene

SERVER_STYLE = {"RSU": ("s", 60), "UAV": ("^", 60), "satellite": ("*", 220), "cloud": ("o", 260)}
LINK_STYLE = {  # kind -> (colour, line style, label)
    "serving": ("0.35", "-", "serving server"),
    "target": ("tab:red", "--", "action's target server"),
    "report": ("tab:purple", ":", "true -> reported location"),
}
LOAD_CMAP = "RdYlGn_r"
FIRST_SEED = 10_000  # held-out episodes: `vmjax evaluate`'s first seed, disjoint from training


# ====================================================================== one frame
def scene_of(env, state, params, info=None, extras=None) -> Scene:
    """The scene of one world of `env` (unwrapped) at `state`, from its scenario's `Scenario.scene`."""
    scenario = scenarios.get(env.name)
    if scenario.scene is None:
        raise ValueError(f"scenario {env.name} has no scene: set Scenario.scene in its vmjax/scenarios module")
    scene = scenario.scene(env, state, params, info, extras)
    bank = getattr(env.config, "trace_bank", "")
    if bank:  # replayed traces: draw their road network (when the bank stores one) instead of the built-in roads
        xmin, xmax, ymin, ymax = scene.extent_m
        roads = mobility.bank_roads_m(bank, (xmax - xmin, ymax - ymin))
        if roads is not None:
            scene = dataclasses.replace(scene, roads_m=roads + np.asarray([xmin, ymin], np.float32))
    return scene


def new_figure(width_in: float = 7.0, height_in: float = 6.0):
    """A standalone figure on the Agg canvas (no pyplot: the caller's matplotlib backend is left alone)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def frame(env, state, params, ax=None, info=None, extras=None):
    """Draw one world of `env` at `state` (one world: no world axis) on `ax` (default: a new figure's); `info`, the
    info of the step taken from `state`, adds the action's targets; `extras`, the policy's (e.g. MSRL's
    `use_server`). Returns the figure."""
    if ax is None:
        ax = new_figure().add_subplot(1, 1, 1)
    draw_scene(scene_of(env, state, params, info, extras), ax)
    return ax.figure


def rgb_array(env, state, params, info=None, extras=None) -> np.ndarray:
    """The frame as an RGB array [H, W, 3] uint8 (Gymnasium's render_mode="rgb_array")."""
    fig = frame(env, state, params, info=info, extras=extras)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def _padding(scene: Scene) -> float:
    """Metres around the map box so coverage disks and servers in the sky stay in view."""
    xmin, xmax, ymin, ymax = scene.extent_m
    pad = 0.04 * max(xmax - xmin, ymax - ymin)
    return max([pad] + [g.coverage_m or 0.0 for g in scene.servers])


def _limits(scene: Scene) -> tuple[float, float, float, float]:
    xmin, xmax, ymin, ymax = scene.extent_m
    points = [g.xy_m for g in scene.servers if len(g.xy_m)] + [scene.vehicles_xy_m]
    points = np.concatenate(points) if points else np.zeros((0, 2))
    pad = _padding(scene)
    lo = np.minimum([xmin, ymin], points.min(axis=0)) - pad if len(points) else np.array([xmin, ymin]) - pad
    hi = np.maximum([xmax, ymax], points.max(axis=0)) + pad if len(points) else np.array([xmax, ymax]) + pad
    return float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])


def draw_scene(scene: Scene, ax) -> None:
    """Draw `scene` on the matplotlib axes `ax` (cleared first)."""
    import matplotlib as mpl

    ax.clear()
    norm, cmap = mpl.colors.Normalize(0.0, 1.0), mpl.colormaps[LOAD_CMAP]
    if scene.roads_m is not None and len(scene.roads_m):
        ax.add_collection(mpl.collections.LineCollection(scene.roads_m, colors="0.85", linewidths=1.0, zorder=0))
    for group in scene.servers:
        _draw_servers(ax, group, norm, cmap)
    for group in scene.links:
        _draw_links(ax, group)
    active = np.asarray(scene.vehicles_active, bool)
    xy = np.asarray(scene.vehicles_xy_m)
    ax.scatter(*xy[active].T, s=22, c="tab:blue", zorder=5, label="vehicle")
    if (~active).any():
        ax.scatter(*xy[~active].T, s=22, c="tab:blue", alpha=0.2, zorder=5, label="vehicle (absent)")
    for label, marked in scene.vehicle_marks.items():
        marked = np.asarray(marked, bool)
        ax.scatter(
            *xy[marked].T, s=110, facecolors="none", edgecolors="tab:orange", linewidths=1.5, zorder=6, label=label
        )
    for label, points in scene.markers.items():
        ax.scatter(*np.asarray(points).T, s=26, marker="x", c="tab:purple", zorder=6, label=label)
    xmin, xmax, ymin, ymax = _limits(scene)
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(ymin, ymax)
    stretched = (xmax - xmin) > 2.5 * (ymax - ymin)  # a corridor: drawn in a wide box, y stretched
    ax.set_aspect("auto" if stretched else "equal")
    ax.set_box_aspect(0.5 if stretched else None)
    ax.set_title(scene.title)
    ax.set_ylabel("y (m)")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False)
    ax.set_xlabel("x (m)\n\n" + "\n".join(scene.notes), fontsize=8, loc="left")
    if not getattr(ax, "_vmjax_colorbar", False):  # once per axes (an animation redraws the same axes)
        bar = ax.figure.colorbar(mpl.cm.ScalarMappable(norm, cmap), ax=ax, shrink=0.6, location="left", pad=0.04)
        bar.set_label("server load (share of capacity)", fontsize=7)
        ax._vmjax_colorbar = True


def _draw_servers(ax, group, norm, cmap) -> None:
    marker, size = SERVER_STYLE[group.kind]
    xy = np.asarray(group.xy_m)
    if not len(xy):
        return
    load = np.asarray(group.load, float)
    present = np.asarray(group.present, bool)
    colours = np.where(np.isnan(load)[:, None], np.array([[0.6, 0.6, 0.9, 1.0]]), cmap(norm(np.nan_to_num(load))))
    colours[:, 3] = np.where(present, 1.0, 0.2)
    ax.scatter(*xy.T, marker=marker, s=size, c=colours, edgecolors="k", linewidths=0.5, zorder=3, label=group.kind)
    if group.coverage_m:
        for x, y in xy[present]:
            ax.add_patch(_circle((x, y), group.coverage_m))


def _circle(centre, radius):
    import matplotlib as mpl

    return mpl.patches.Circle(centre, radius, facecolor="tab:green", alpha=0.04, edgecolor="none", zorder=1)


def _draw_links(ax, group) -> None:
    colour, style, label = LINK_STYLE[group.kind]
    start, end = np.asarray(group.from_m), np.asarray(group.to_m)
    if not len(start):
        return
    for (x0, y0), (x1, y1) in zip(start, end):
        ax.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops=dict(arrowstyle="->", color=colour, linestyle=style, linewidth=1.0, shrinkA=2, shrinkB=4),
            zorder=4,
        )
    ax.plot([], [], color=colour, linestyle=style, label=label)  # a legend entry for the arrows


# ====================================================================== an episode
def record_episode(env, params, policy, key, num_steps: int | None = None) -> list[tuple]:
    """One episode of `policy` (a per-world `policy(key, state, params)` or a `StatefulPolicy`) in one world of
    `env` from `key`, in one jitted `lax.scan`: [(state, info, extras)] per slot (one world each, NumPy-ready),
    up to the slot that ends the episode (at most `num_steps`, default the env's `max_steps`)."""
    policy = policy if isinstance(policy, StatefulPolicy) else stateless(policy)
    num_steps = int(num_steps or env.config.max_steps)

    @jax.jit
    def run(key):
        k_reset, k_init, k_steps = jax.random.split(key, 3)
        _, state = env.reset_env(k_reset, params)
        policy_state = policy.init(k_init, params)

        def body(carry, k):
            state, policy_state = carry
            k_act, k_env = jax.random.split(k)
            action, policy_state, extras = policy.act(k_act, policy_state, state, params)
            _, next_state, _, terminated, truncated, info = env.step_env(k_env, state, action, params)
            return (next_state, policy_state), (state, info, extras, jnp.logical_or(terminated, truncated))

        _, out = jax.lax.scan(body, (state, policy_state), jax.random.split(k_steps, num_steps))
        return out

    states, infos, extras, done = jax.device_get(run(key))
    last = int(np.argmax(done)) if np.any(done) else num_steps - 1
    pick = lambda tree, t: jax.tree.map(lambda x: x[t], tree)
    return [(pick(states, t), pick(infos, t), pick(extras, t)) for t in range(last + 1)]


def animate(env, params, episodes: list[list[tuple]], out: Path, fps: int = 4) -> Path:
    """Write the recorded `episodes` (`record_episode`) as one animation: a GIF (matplotlib's PillowWriter) or,
    for a .mp4 path, a video (FFMpegWriter, where ffmpeg is installed)."""
    from matplotlib import animation

    out = Path(out)
    if out.suffix.lower() == ".gif":
        writer = animation.PillowWriter(fps=fps)
    elif out.suffix.lower() == ".mp4":
        if not animation.FFMpegWriter.isAvailable():
            raise ValueError(f"--out {out}: writing .mp4 needs ffmpeg on the PATH; write a .gif instead")
        writer = animation.FFMpegWriter(fps=fps)
    else:
        raise ValueError(f"--out must end in .gif or .mp4, got {out.name!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig = new_figure(8.0, 6.0)
    ax = fig.add_subplot(1, 1, 1)
    with writer.saving(fig, str(out), dpi=80):
        for number, episode in enumerate(episodes):
            for state, info, extras in episode:
                draw_scene(scene_of(env, state, params, info, extras), ax)
                if len(episodes) > 1:
                    ax.set_title(f"{ax.get_title()} - episode {number + 1}")
                writer.grab_frame()
    return out


# ====================================================================== a run's episode
def policy_of_run(run_dir: Path, policy: str):
    """(env, params, policy, label) for `vmjax render`: the run's trained policy ("trained", needs its checkpoint)
    or one of its scenario's heuristics by name ("greedy": the scenario's `Scenario.greedy`)."""
    run_dir = Path(run_dir)
    if policy == "trained":
        configs, env, params, trainer, state = runner.load_run(run_dir)
        return env, params, trainer.make_eval_policy(state), runner.run_label(configs)
    saved = runner.read_saved_config(run_dir)
    saved["run"]["run_dir"] = str(run_dir)
    try:
        configs = runner.configs_from_json(saved)
    except (KeyError, TypeError, ValueError) as error:
        raise SystemExit(f"{run_dir / 'config.json'}: not a config this version can read ({error})") from error
    scenario = scenarios.get(configs["run"].env)
    heuristics = scenario.evaluation.policies
    name = scenario.greedy if policy == "greedy" and scenario.greedy else policy
    if name not in heuristics:
        known = ", ".join(["trained", "greedy", *sorted(heuristics)])
        raise SystemExit(f"--policy must be one of {known} for {scenario.env_id}, got {policy!r}")
    env, params = runner.build_env_and_params(configs, run_dir, log=lambda *_: None)
    return env, params, heuristics[name](env), name


def render_run(
    run_dir: Path,
    out: Path,
    episodes: int = 1,
    policy: str = "trained",
    first_seed: int = FIRST_SEED,
    steps: int | None = None,
    fps: int = 4,
) -> Path:
    """Animate `episodes` held-out episodes (seeds first_seed, first_seed + 1, ...) of a run's policy into `out`."""
    env, params, act, label = policy_of_run(Path(run_dir), policy)
    recorded = [record_episode(env, params, act, jax.random.PRNGKey(first_seed + e), steps) for e in range(episodes)]
    path = animate(env, params, recorded, Path(out), fps)
    frames = sum(len(e) for e in recorded)
    print(f"wrote {path}: {episodes} episode(s) of {label} on {env.name}, {frames} frames")
    return path


def scenario_frames(
    out_dir: Path, env_ids=None, steps: int = 3, seed: int = FIRST_SEED, dpi: int = 70, suffix: str = "", **config
) -> list[Path]:
    """One PNG per scenario (default: every registered -v0 id, at its default config, or with `config`, e.g.
    trace_bank="bank.npz"): the frame of slot `steps` of a held-out episode of the scenario's greedy heuristic, as
    `<out_dir>/<env id><suffix>.png` (the README's images: `python -c "from vmjax import render;
    render.scenario_frames('docs/img')"`)."""
    from vmjax.core import registry

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for env_id in env_ids or [e for e in registry.registered_envs() if e.endswith("-v0")]:
        env = registry.make(env_id, **config)
        params = env.default_params
        scenario = scenarios.get(env_id)
        policy = scenario.evaluation.policies[scenario.greedy](env)
        state, info, extras = record_episode(env, params, policy, jax.random.PRNGKey(seed), steps + 1)[steps]
        fig = frame(env, state, params, info=info, extras=extras)
        path = out_dir / f"{env_id}{suffix}.png"
        fig.savefig(path, dpi=dpi)
        paths.append(path)
    return paths


__all__ = [
    "animate",
    "draw_scene",
    "frame",
    "new_figure",
    "record_episode",
    "render_run",
    "rgb_array",
    "scenario_frames",
    "scene_of",
]
