"""Switchyard model-worker: serves one model through a backend."""
