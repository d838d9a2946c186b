"""`python -m bench`: the whole benchmark in one process (bench/harness.py, bench/README.md); with `--devices`
(`python -m bench --devices 1,2,4,8`), the device scaling of sharded worlds instead (bench/device_scaling.py)."""

import sys

if any(arg == "--devices" or arg.startswith("--devices=") for arg in sys.argv[1:]):
    from bench.device_scaling import main
else:
    from bench.harness import main

raise SystemExit(main())
