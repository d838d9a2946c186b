"""`python -m bench`: the whole benchmark in one process (bench/harness.py, bench/README.md)."""

from bench.harness import main

raise SystemExit(main())
