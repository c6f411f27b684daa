"""Discovery from Kubernetes EndpointSlices, for clusters without Consul.

Lists, then watches, the EndpointSlices labelled ``kubernetes.io/service-name=<service>``
with the official ``kubernetes`` client (synchronous, so it runs in a daemon thread that
hands each new view to the event loop). Only ready endpoints are instances. Models come from
``KubernetesDiscoverySettings.models`` plus the slice label ``switchyard.io/model`` (the
EndpointSlice controller copies the Service's labels onto its slices); the gateway's probes
add what each instance reports on ``/v1/models``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import kubernetes
from prometheus_client import CollectorRegistry

from switchyard_common.consul import backoff_delays
from switchyard_gateway.discovery.base import Instance, WatchingDiscovery
from switchyard_gateway.discovery.settings import KubernetesDiscoverySettings

log = logging.getLogger(__name__)

# The kubernetes client is only partly typed: use it as untyped, through these names.
client: Any = kubernetes.client
config: Any = kubernetes.config
watch: Any = kubernetes.watch

SERVICE_LABEL = "kubernetes.io/service-name"
MODEL_LABEL = "switchyard.io/model"
_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def slice_instances(
    slices: Iterable[Any], port_name: str | None, scheme: str, models: frozenset[str]
) -> list[Instance]:
    """Ready endpoints of ``V1EndpointSlice`` objects as instances."""
    found: dict[str, Instance] = {}
    for s in slices:
        ports = [p for p in s.ports or () if p.port]
        port = next((p for p in ports if port_name and p.name == port_name), None)
        port = port or (ports[0] if ports else None)
        if port is None:
            continue
        labels = s.metadata.labels or {}
        slice_models = models | ({labels[MODEL_LABEL]} if labels.get(MODEL_LABEL) else set())
        for ep in s.endpoints or ():
            ready = ep.conditions.ready if ep.conditions is not None else None
            # The API says a nil "ready" is unknown and consumers should treat it as ready.
            if ready is False or not ep.addresses:
                continue
            address = ep.addresses[0]
            host = f"[{address}]" if ":" in address else address
            iid = ep.target_ref.name if ep.target_ref is not None else f"{address}:{port.port}"
            meta = {"namespace": s.metadata.namespace or "", "slice": s.metadata.name or ""}
            if ep.node_name:
                meta["node"] = ep.node_name
            found[iid] = Instance(
                id=iid,
                url=f"{scheme}://{host}:{port.port}",
                models=frozenset(slice_models),
                meta=meta,
            )
    return list(found.values())


class KubernetesDiscovery(WatchingDiscovery):
    backend = "kubernetes"

    def __init__(
        self,
        service: str,
        settings: KubernetesDiscoverySettings | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        super().__init__(registry)
        self.service = service
        self.settings = settings or KubernetesDiscoverySettings()
        self.namespace = self.settings.namespace or _pod_namespace()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._watch: Any = None
        self._api: Any = None
        self._answered = asyncio.Event()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._api = await asyncio.to_thread(self._api_client)
        self._thread = threading.Thread(
            target=self._run, args=(loop, self._api), name="kubernetes-discovery", daemon=True
        )
        self._thread.start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._answered.wait(), self.settings.initial_wait_seconds)

    async def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()
        if self._thread is not None:
            # The thread ends at its next event or read timeout; it is a daemon either way.
            await asyncio.to_thread(self._thread.join, 1.0)
        if self._api is not None:
            self._api.close()

    def _api_client(self) -> Any:
        s = self.settings
        cfg = client.Configuration()
        if s.api_server:
            cfg.host = s.api_server.rstrip("/")
        elif s.kubeconfig is not None:
            config.load_kube_config(config_file=str(s.kubeconfig), client_configuration=cfg)
        else:
            config.load_incluster_config(client_configuration=cfg)
        # Fail fast: the watch loop retries with its own backoff and reports the outage.
        cfg.retries = 0
        return client.ApiClient(cfg)

    # -- the watcher thread ---------------------------------------------------------------

    def _run(self, loop: asyncio.AbstractEventLoop, api_client: Any) -> None:
        api = client.DiscoveryV1Api(api_client)
        s = self.settings
        selector = f"{SERVICE_LABEL}={self.service}"
        timeout = (5.0, s.watch_timeout_seconds + 5.0)
        delays = backoff_delays(s.retry_initial_seconds, s.retry_max_seconds)
        while not self._stop.is_set():
            try:
                listed = api.list_namespaced_endpoint_slice(
                    self.namespace, label_selector=selector, _request_timeout=timeout
                )
                slices = {i.metadata.name: i for i in listed.items}
                self._emit(loop, slices)
                delays = backoff_delays(s.retry_initial_seconds, s.retry_max_seconds)
                self._watch = watch.Watch()
                for event in self._watch.stream(
                    api.list_namespaced_endpoint_slice,
                    self.namespace,
                    label_selector=selector,
                    resource_version=listed.metadata.resource_version,
                    timeout_seconds=s.watch_timeout_seconds,
                    allow_watch_bookmarks=True,
                    _request_timeout=timeout,
                ):
                    kind, obj = event["type"], event["object"]
                    if kind in ("ADDED", "MODIFIED"):
                        slices[obj.metadata.name] = obj
                    elif kind == "DELETED":
                        slices.pop(obj.metadata.name, None)
                    else:  # BOOKMARK, or ERROR (e.g. 410 Gone): relist on ERROR
                        if kind == "ERROR":
                            break
                        continue
                    self._emit(loop, slices)
            except client.ApiException as exc:
                if exc.status == 410 and not self._stop.is_set():
                    continue  # our resourceVersion expired: list again
                self._failed_in_thread(loop, exc, delays)
            except Exception as exc:
                self._failed_in_thread(loop, exc, delays)

    def _failed_in_thread(
        self, loop: asyncio.AbstractEventLoop, exc: BaseException, delays: Iterator[float]
    ) -> None:
        if not self._stop.is_set():
            with contextlib.suppress(RuntimeError):  # the loop may be closing
                loop.call_soon_threadsafe(self._failed, exc)
            self._stop.wait(next(delays))

    def _emit(self, loop: asyncio.AbstractEventLoop, slices: dict[str, Any]) -> None:
        s = self.settings
        instances = slice_instances(slices.values(), s.port_name, s.scheme, frozenset(s.models))
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._apply, instances)

    def _apply(self, instances: list[Instance]) -> None:
        self._mark_up()
        self._publish(instances)
        self._answered.set()

    def _failed(self, exc: BaseException) -> None:
        self._mark_down(exc)
        self._answered.set()


def _pod_namespace() -> str:
    try:
        return _NAMESPACE_FILE.read_text().strip() or "default"
    except OSError:
        return "default"
