"""Benchmarks run by ``./run.sh bench`` (quality on the simulator, speed and memory)."""
