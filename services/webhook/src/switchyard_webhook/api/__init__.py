"""The webhook service's routers, one per resource."""
