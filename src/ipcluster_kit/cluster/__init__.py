"""Cluster control: start a profile's controller and engines, report on them, stop them by PID."""
