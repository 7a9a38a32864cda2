"""Speed benchmarks (run as `python -m bench.<name>` from the repository root); they write docs/benchmarks.md."""
