"""Benchmarks: workloads, backends, the runner, results and reports."""
