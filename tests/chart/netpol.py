"""A small NetworkPolicy evaluator: may this pod (or address) reach that one on this port?"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from tests.chart.render import NAMESPACE, Rendered, selector_matches


@dataclass
class Endpoint:
    """A pod (labels, namespace) or, with ip set, an address outside the pod network."""

    name: str
    labels: dict[str, str] = field(default_factory=dict)
    namespace: str = NAMESPACE
    ports: dict[str, int] = field(default_factory=dict)
    ip: str | None = None

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace}


def release_pods(r: Rendered) -> list[Endpoint]:
    out = []
    for owner, pod in r.pod_templates():
        ports = {
            p["name"]: p["containerPort"]
            for c in pod["spec"]["containers"]
            for p in c.get("ports", [])
            if "name" in p
        }
        out.append(Endpoint(owner["metadata"]["name"], pod["metadata"]["labels"], ports=ports))
    return out


def _peer_matches(peer: dict[str, Any], ep: Endpoint, policy_ns: str) -> bool:
    if "ipBlock" in peer:
        if ep.ip is None:
            return False
        block = peer["ipBlock"]
        ip = ipaddress.ip_address(ep.ip)
        inside = ip in ipaddress.ip_network(block["cidr"])
        return inside and not any(ip in ipaddress.ip_network(e) for e in block.get("except", []))
    if ep.ip is not None:
        return False
    ns_selector = peer.get("namespaceSelector")
    if ns_selector is None:
        ns_ok = ep.namespace == policy_ns
    else:
        ns_ok = selector_matches(ns_selector, ep.namespace_labels)
    pod_selector = peer.get("podSelector")
    return ns_ok and (pod_selector is None or selector_matches(pod_selector, ep.labels))


def _port_matches(
    ports: list[dict[str, Any]] | None, dst: Endpoint, port: int, protocol: str
) -> bool:
    if not ports:
        return True
    for p in ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        want = p.get("port")
        if want is None or want == port or (isinstance(want, str) and dst.ports.get(want) == port):
            return True
    return False


def _selecting(policies: list[dict[str, Any]], ep: Endpoint, kind: str) -> list[dict[str, Any]]:
    if ep.ip is not None:
        return []
    return [
        p
        for p in policies
        if p["metadata"].get("namespace", NAMESPACE) == ep.namespace
        and kind in p["spec"].get("policyTypes", ["Ingress"])
        and selector_matches(p["spec"]["podSelector"], ep.labels)
    ]


def allowed(
    policies: list[dict[str, Any]], src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP"
) -> bool:
    """True when both dst's ingress and src's egress policies admit the connection."""
    ingress = _selecting(policies, dst, "Ingress")
    ingress_ok = not ingress or any(
        _port_matches(rule.get("ports"), dst, port, protocol)
        and (
            not rule.get("from")
            or any(_peer_matches(peer, src, dst.namespace) for peer in rule["from"])
        )
        for p in ingress
        for rule in p["spec"].get("ingress", [])
    )
    egress = _selecting(policies, src, "Egress")
    egress_ok = not egress or any(
        _port_matches(rule.get("ports"), dst, port, protocol)
        and (
            not rule.get("to")
            or any(_peer_matches(peer, dst, src.namespace) for peer in rule["to"])
        )
        for p in egress
        for rule in p["spec"].get("egress", [])
    )
    return ingress_ok and egress_ok
