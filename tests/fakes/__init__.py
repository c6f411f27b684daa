"""Fakes of external systems (Consul, the Kubernetes API) that follow their documented APIs."""
