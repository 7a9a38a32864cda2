"""Model-quality evaluations on real imagery and their reports (apart from the speed benchmarks in bench/)."""
