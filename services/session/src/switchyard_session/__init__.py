"""Switchyard session service.

Conversations: durable storage, token-budgeted context windows, tenant isolation.
"""
