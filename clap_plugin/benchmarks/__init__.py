"""Benchmarks that run whole trainings (tools/benchmarks/ holds their command-line entry points)."""
