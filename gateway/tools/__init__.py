"""Tooling around the gateway, not part of serving: the demo, an in-thread gateway harness for
tests and scripts, the calibration command and the dashboard screenshot."""
