"""Latency calibration: measuring real int8 runs on this machine and fitting from user runs."""
