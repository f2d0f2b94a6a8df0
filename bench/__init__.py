"""Benchmarks: `make bench` runs them and prints Markdown tables (never asserted in tests)."""
