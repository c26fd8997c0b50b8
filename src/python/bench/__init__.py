"""Benchmarks of the core path: `./pants run src/python/bench:bench` (see BENCHMARKS.md)."""
