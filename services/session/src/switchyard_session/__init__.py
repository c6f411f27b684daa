"""Switchyard session service: conversations: durable storage, token-budgeted context windows, tenant isolation."""
