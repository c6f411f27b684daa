"""The Responses API on the gateway: each turn becomes a chat completion on the workers, its
state kept by the session service."""
