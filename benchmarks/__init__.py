"""Benchmarks of the pizza shop: `python -m benchmarks` (or `make bench`); see docs/benchmarks.md."""
