"""vmjax benchmarks: throughput measured in one process, compile time reported apart (README)."""
