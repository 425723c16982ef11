"""Profiles: the validated settings (spec), presets, rendering to ipyparallel config, and storage."""
