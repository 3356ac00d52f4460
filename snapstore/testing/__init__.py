"""Helpers for testing snapstore against real components (zarr ships its store tests the same way)."""
