"""Benchmarks run against real servers started for the purpose (see bench/README.md)."""
