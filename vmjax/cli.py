"""The `vmjax` command line: flags in, `vmjax.runner` out.

    vmjax train [--env ENV_ID] [--algo ALGO] [--section.field VALUE ...]   # train a learner on a scenario
    vmjax train --run.run_dir runs/avatar_premigration --resume             # continue from the last checkpoint
    vmjax evaluate runs/avatar_premigration [more run folders]              # trained policies vs heuristics
    vmjax render runs/twin_routing --episodes 1 --out episode.gif           # animate a held-out episode
    vmjax train --env ENV_ID --algo ALGO --help                             # every flag of that run
    vmjax traces sumo --net grid --vehicles 50 --hours 1 --out bank.npz     # a SUMO trace bank (--env.trace_bank)

Every config field of the run's sections (run, env, agent and the scenario's own) is a flag `--section.field`,
typed by its default, documented by the field's comment in the config dataclass; a `typing.Literal` field shows
its choices. The scenarios, their learners and defaults come from the registry (`vmjax.scenarios`).

The parsing is argparse's, not tyro's. tyro 1.0.17's import (0.26 s) would cost only ~2% of `import vmjax.cli`
(12 s on a busy 2-core CPU, mostly jax), but it is one more dependency and changes the help and error texts; the
~100 lines here keep `--section.field` flags, help from the field comments and errors that name the field.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re
import sys
import typing
from pathlib import Path
from typing import Any

from vmjax import runner, scenarios
from vmjax.core import distributed, validation
from vmjax.mobility import sumo_build


# ====================================================================== config <-> flags
def field_comments(cls) -> dict[str, str]:
    """The trailing `# comment` of each field in a config dataclass's source (continuation lines included), a
    subclass's comment over its base's: the single source of the field documentation shown by --help."""
    comments = {}
    for base in reversed(cls.__mro__[:-1]):
        if dataclasses.is_dataclass(base):
            comments.update(_own_field_comments(base))
    return comments


def _own_field_comments(cls) -> dict[str, str]:
    try:
        lines = inspect.getsource(cls).splitlines()
    except (OSError, TypeError):
        return {}
    comments, current = {}, None
    for line in lines:
        match = re.match(r"\s+(\w+)\s*:[^=]*=.*?#\s?(.*)$", line)
        if match:
            current = match.group(1)
            comments[current] = match.group(2).strip()
        elif current and re.match(r"\s+#\s?(.*)$", line):
            comments[current] += " " + re.match(r"\s+#\s?(.*)$", line).group(1).strip()
        else:
            current = None if line.strip() else current
    return comments


def _parse_value(kind: type, text: str, flag: str):
    if kind is bool:
        lowered = text.lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise argparse.ArgumentTypeError(f"{flag} expects true or false, got {text!r}")
        return lowered in ("true", "1", "yes")
    if kind is tuple:
        try:
            return tuple(int(x) for x in text.split(",") if x.strip())
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"{flag} expects comma-separated integers, got {text!r}") from error
    try:
        return kind(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{flag} expects {kind.__name__}, got {text!r}") from error


def add_config_flags(parser: argparse.ArgumentParser, section: str, cls, defaults: dict[str, Any]) -> None:
    """One `--section.field` flag per dataclass field, typed by its default, documented by its comment; the
    choices of a `Literal` field are shown (and checked by the config itself, with the field named)."""
    group = parser.add_argument_group(f"{section} ({cls.__name__})", (cls.__doc__ or "").strip().splitlines()[0])
    comments = field_comments(cls)
    choices = validation.field_choices(cls)
    for field in dataclasses.fields(cls):
        default = defaults.get(field.name, field.default)
        flag = f"--{section}.{field.name}"
        kind = type(default)
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        note = f" (command-line default; library default {field.default!r})" if field.name in defaults else ""
        metavar = (
            "{" + "|".join(map(str, choices[field.name])) + "}" if field.name in choices else kind.__name__.upper()
        )
        group.add_argument(
            flag,
            dest=f"{section}.{field.name}",
            metavar=metavar,
            type=lambda text, kind=kind, flag=flag: _parse_value(kind, text, flag),
            default=argparse.SUPPRESS,
            help=f"{comments.get(field.name, '')} [default: {shown}]{note}".replace("%", "%%"),
        )


# ====================================================================== parser
def make_parser(algo: str = "", env_id: str = "") -> argparse.ArgumentParser:
    """The parser; the train flags are those of the scenario `env_id` (default: the one of `algo`, else the
    registry's default scenario) and the learner `algo` (default: the scenario's first)."""
    env_id = env_id or scenarios.algorithms().get(algo, scenarios.DEFAULT_ENV_ID)
    scenario = scenarios.get(env_id)
    algo = algo or scenario.default_algo
    listing = "; ".join(f"{e}: {' | '.join(s.learners)}" for e, s in scenarios.all_scenarios().items())
    parser = argparse.ArgumentParser(
        prog="vmjax", description="vmjax: vehicular-metaverse edge-network simulator", allow_abbrev=False
    )
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    commands = parser.add_subparsers(dest="command", required=True)
    train_parser = commands.add_parser(
        "train",
        help=f"train a learner (default: {scenario.default_algo} on {scenarios.DEFAULT_ENV_ID})",
        description=f"Train {algo} on {env_id}. Scenarios and learners (--env, --algo): {listing}. Every config "
        "field is a flag; command-line defaults finish in a few minutes on 2 CPU cores.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,
    )
    train_parser.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --run.run_dir (the folder as given, wherever it was created) from its "
        "checkpoint; its saved config is used: only --agent.num_iterations (not for a config that anneals over "
        "the total), --run.chunk_iterations, --run.log and --run.num_devices may change",
    )
    train_parser.add_argument(
        "--env",
        dest="run.env",
        default=argparse.SUPPRESS,
        metavar="ENV_ID",
        help=f"the scenario, short for --run.env: {' | '.join(scenarios.all_scenarios())}",
    )
    train_parser.add_argument(
        "--algo",
        dest="run.algo",
        default=argparse.SUPPRESS,
        metavar="ALGO",
        type=lambda text: text.replace("-", "_"),
        help="the learner, short for --run.algo",
    )
    train_parser.add_argument(
        "--log",
        dest="run.log",
        default=argparse.SUPPRESS,
        choices=typing.get_args(runner.MetricsLog),
        help="metrics sinks, short for --run.log",
    )
    multi_host = train_parser.add_argument_group(
        "multi-host", "one process per host, all with the same flags but --process-id (vmjax.core.distributed)"
    )
    multi_host.add_argument(
        "--coordinator", default="", metavar="HOST:PORT", help="process 0's address (JAX_COORDINATOR_ADDRESS)"
    )
    multi_host.add_argument("--num-processes", type=int, default=0, help="processes in the run (JAX_NUM_PROCESSES)")
    multi_host.add_argument("--process-id", type=int, default=-1, help="this process, 0.. (JAX_PROCESS_ID)")
    multi_host.add_argument(
        "--distributed",
        action="store_true",
        help="start jax.distributed with JAX's cluster detection (Slurm, Open MPI, Cloud TPU) when no coordinator "
        "is given",
    )
    for section, cls in scenario.config_sections(algo, runner.RunConfig).items():
        add_config_flags(train_parser, section, cls, scenario.defaults.get(section, {}))
    eval_parser = commands.add_parser(
        "evaluate",
        help="compare trained policies with the heuristics",
        description=runner.evaluate.__doc__.splitlines()[0],
        allow_abbrev=False,
    )
    eval_parser.add_argument("run_dirs", nargs="+", type=Path, help="run folders to evaluate")
    eval_parser.add_argument("--episodes", type=int, default=100, help="held-out episodes per seed (§7.1: 100)")
    eval_parser.add_argument("--seeds", type=int, default=3, help="independent held-out episode sets")
    eval_parser.add_argument("--first-seed", type=int, default=10_000, help="seed of the first episode set")
    eval_parser.add_argument("--out", type=Path, help="output folder (default: the first run folder)")
    eval_parser.add_argument(
        "--heuristics",
        nargs="+",
        metavar="NAME",
        help="the heuristics to run beside the runs (default: all of the scenario's; names its optional "
        "model-based planners too, e.g. radius_planner on CrossRealityPrivacy-v1)",
    )
    traces_parser = commands.add_parser(
        "traces", help="build a trace bank for --env.trace_bank", description="Build a trace bank.", allow_abbrev=False
    )
    sources = traces_parser.add_subparsers(dest="source", required=True)
    sumo_parser = sources.add_parser(
        "sumo",
        help="a bank from a SUMO simulation (pip install 'vmjax[sumo]')",
        description=(sumo_build.__doc__ or "").split("\n\n")[0].strip(),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        allow_abbrev=False,
    )
    add_dash_flags(sumo_parser, sumo_build.SumoBankConfig)
    sumo_parser.add_argument(
        "--out", type=Path, required=True, help="the bank (.npz); the net, FCD, trips and summary go beside it"
    )
    render_parser = commands.add_parser(
        "render",
        help="animate a held-out episode of a run's policy (GIF, or MP4 with ffmpeg)",
        description="Animate held-out episodes of a run's trained policy, or of one of its scenario's heuristics, "
        "one frame per slot (vmjax.render).",
        allow_abbrev=False,
    )
    render_parser.add_argument(
        "run_dir", type=Path, help="the run folder (its config.json; its checkpoint for trained)"
    )
    render_parser.add_argument("--episodes", type=int, default=1, help="held-out episodes, one after the other")
    render_parser.add_argument("--out", type=Path, help="the .gif (or .mp4) to write (default: RUN_DIR/episode.gif)")
    render_parser.add_argument(
        "--policy",
        default="trained",
        help="trained (the run's checkpoint), greedy (the scenario's greedy heuristic) or any heuristic of the "
        "run's scenario by name",
    )
    render_parser.add_argument("--first-seed", type=int, default=10_000, help="seed of the first episode (held out)")
    render_parser.add_argument("--steps", type=int, help="slots per episode at most (default: the whole episode)")
    render_parser.add_argument("--fps", type=int, default=4, help="frames per second of the animation")
    return parser


def add_dash_flags(parser: argparse.ArgumentParser, cls) -> None:
    """One `--field-name` flag per dataclass field (underscores as dashes), typed by its default, documented by its
    comment; a `Literal` field's choices are checked by argparse."""
    comments = field_comments(cls)
    choices = validation.field_choices(cls)
    for field in dataclasses.fields(cls):
        flag = "--" + field.name.replace("_", "-")
        kind = type(field.default)
        parser.add_argument(
            flag,
            dest=field.name,
            type=lambda text, kind=kind, flag=flag: _parse_value(kind, text, flag),
            default=field.default,
            choices=choices.get(field.name),
            help=comments.get(field.name, "").replace("%", "%%"),
        )


def _flag_from_argv(argv: list[str], names: tuple[str, ...]) -> str:
    for i, arg in enumerate(argv):
        for name in names:
            if arg.startswith(name + "="):
                return arg.split("=", 1)[1]
            if arg == name and i + 1 < len(argv):
                return argv[i + 1]
    return ""


def _check_scenario_and_algo(env_id: str, algo: str) -> None:
    """--env and --algo decide which flags exist, so they are checked before the parser is built."""
    known = scenarios.all_scenarios()
    if env_id and env_id not in known:
        raise SystemExit(f"--env must be one of {sorted(known)}, got {env_id!r}")
    choices = known[env_id].learners if env_id else scenarios.algorithms()
    if algo and algo not in choices:
        raise SystemExit(f"--algo must be one of {sorted(choices)}{f' for {env_id}' if env_id else ''}, got {algo!r}")


# ====================================================================== entry point
class CommandError(SystemExit):
    """A command-line error, already printed as one line: exit status 2; str() is the message."""

    def __init__(self, message: str):
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def main(argv: list[str] | None = None) -> int:
    """`vmjax ...`: an error prints one line (`vmjax: error: ...`) and exits with status 2 (`--debug`: the
    traceback instead)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [arg for arg in argv if arg != "--debug"]
    try:
        return _run(argv)
    except SystemExit as error:
        if debug or error.code is None or isinstance(error.code, int):
            raise  # argparse's own exits (usage printed) and successful ones
        message = str(error.code)
    except KeyboardInterrupt:
        if debug:
            raise
        message = "interrupted (a resumed run continues from the last checkpoint)"
    except Exception as error:
        if debug:
            raise
        message = f"{error.__class__.__name__}: {error}" if not isinstance(error, ValueError | OSError) else str(error)
    print(f"vmjax: error: {message.splitlines()[0] if message else 'failed'}", file=sys.stderr)
    raise CommandError(message)


def _start_distributed(argv: list[str]) -> None:
    """`jax.distributed.initialize` for a multi-host `vmjax train`, before anything else touches JAX (so read
    from argv before the parser, whose flags only document them)."""
    if not argv or argv[0] != "train":
        return
    try:
        settings = distributed.distributed_settings(
            _flag_from_argv(argv, ("--coordinator",)),
            int(_flag_from_argv(argv, ("--num-processes",)) or 0),
            int(_flag_from_argv(argv, ("--process-id",)) or -1),
        )
    except ValueError as error:
        raise SystemExit(f"vmjax train: {error}") from None
    distributed.initialize(settings, auto="--distributed" in argv)


def _run(argv: list[str]) -> int:
    _start_distributed(argv)
    algo = _flag_from_argv(argv, ("--run.algo", "--algo")).replace("-", "_")
    env_id = _flag_from_argv(argv, ("--run.env", "--env"))
    _check_scenario_and_algo(env_id, algo)
    args = make_parser(algo, env_id).parse_args(argv)
    if args.command == "train":
        overrides = {k: v for k, v in vars(args).items() if "." in k}
        try:
            if args.resume:
                run_dir = (
                    overrides.get("run.run_dir")
                    or runner.RunConfig(env=env_id or scenarios.DEFAULT_ENV_ID, algo=algo).run_dir
                )
                configs = runner.resume_configs(Path(run_dir), overrides)
            else:
                configs = runner.build_configs(overrides)
        except (ValueError, TypeError) as error:
            raise SystemExit(f"vmjax train: {error}") from error
        runner.train(configs, resume=args.resume)
        return 0
    if args.command == "traces":
        fields = {f.name: getattr(args, f.name) for f in dataclasses.fields(sumo_build.SumoBankConfig)}
        try:
            config = sumo_build.SumoBankConfig(**fields)
        except ValueError as error:
            raise SystemExit(f"vmjax traces sumo: {error}") from error
        sumo_build.build_sumo_bank(config, args.out)
        return 0
    if args.command == "render":
        return _render(args)
    if args.episodes < 2 or args.seeds < 1:
        raise SystemExit("vmjax evaluate: --episodes must be >= 2 and --seeds >= 1")
    out = args.out or args.run_dirs[0]
    runner.evaluate(args.run_dirs, args.episodes, args.seeds, args.first_seed, out, heuristics=args.heuristics)
    return 0


def _render(args) -> int:
    from vmjax import render  # matplotlib's animation machinery only when rendering

    if args.episodes < 1 or args.fps < 1 or (args.steps is not None and args.steps < 1):
        raise SystemExit("vmjax render: --episodes, --fps and --steps must be >= 1")
    out = args.out or args.run_dir / "episode.gif"
    render.render_run(args.run_dir, out, args.episodes, args.policy, args.first_seed, args.steps, args.fps)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["CommandError", "add_config_flags", "field_comments", "main", "make_parser"]
