"""Helpers for tests that run real service processes."""
