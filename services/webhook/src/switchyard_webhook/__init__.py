"""Switchyard webhook service: signed, retried, durable event delivery to customer URLs."""
