"""vmjax benchmarks: throughput measured in one process, compile time reported apart (bench/README.md, docs/benchmarks.md)."""
