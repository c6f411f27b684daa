"""Switchyard gateway: the public OpenAI-compatible API."""
