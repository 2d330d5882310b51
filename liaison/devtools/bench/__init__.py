"""Benchmarks: the hub measured against a raw baseline in the same run, on the same broker."""
