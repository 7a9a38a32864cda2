"""Helpers shared by the tests: server fixtures, the in-memory reference scene path, tiny hand-built artifacts."""
