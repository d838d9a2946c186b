"""One process of the multi-host check in tests/test_data_parallel.py: `vmjax train` (as the console script runs
it) with `--coordinator 127.0.0.1:PORT --num-processes 2 --process-id ID`, each process with 2 forced host
devices, so the 4 worlds split over 4 devices of 2 processes. It asserts nothing itself: it prints one JSON line.

    XLA_FLAGS=--xla_force_host_platform_device_count=2 JAX_PLATFORMS=cpu \
        python tests/multihost_worker.py ID PORT RUN_DIR
"""

from __future__ import annotations

import json
import sys

from data_parallel_worker import TINY_AVATAR

from vmjax import cli


def main() -> None:
    process_id, port, run_dir = sys.argv[1], sys.argv[2], sys.argv[3]
    cli.main(
        ["train", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2", "--process-id", process_id]
        + ["--run.run_dir", run_dir, *TINY_AVATAR, "--agent.num_iterations", "3"]
    )
    import jax

    print(
        json.dumps(
            {"process_index": jax.process_index(), "processes": jax.process_count(), "devices": jax.device_count()}
        )
    )


if __name__ == "__main__":
    main()
