"""A real Prometheus (Debian's ``prometheus`` package) scraping the platform on loopback."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import yaml

from switchyard_cli.processes import wait_until
from tests.observability.platform import Target
from tests.support.procs import free_port

SCRAPE_INTERVAL = "1s"


class Prometheus:
    def __init__(self, tmp: Path, targets: list[Target]) -> None:
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus is not installed: apt-get install -y prometheus")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": "1s"},
            "scrape_configs": [
                {
                    "job_name": f"{t.job}-{i}",
                    # The Service name, as the ServiceMonitor's job label would be.
                    "relabel_configs": [{"target_label": "job", "replacement": t.job}],
                    "static_configs": [{"targets": [urlsplit(t.url).netloc], "labels": t.labels}],
                }
                for i, t in enumerate(targets)
            ],
        }
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.log = tmp / "prometheus.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [binary, f"--config.file={tmp / 'prometheus.yml'}",
                 f"--storage.tsdb.path={tmp / 'data'}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.targets = len(targets)

    def api(self, path: str, **params: Any) -> Any:
        r = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = r.json()
        if body.get("status") != "success":
            raise PromQLError(f"{path} {params}: {body.get('error', r.text)}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        result: list[dict[str, Any]] = data["result"] if data["resultType"] == "vector" else []
        return result

    def last_scrapes(self) -> list[float]:
        """When each target that is up was last scraped (the time of its ``up`` sample)."""
        up = {tuple(sorted(r["metric"].items())) for r in self.query("up == 1")}
        return [
            float(r["value"][1])
            for r in self.query("timestamp(up)")
            if tuple(sorted({**r["metric"], "__name__": "up"}.items())) in up
            or tuple(sorted(r["metric"].items())) in up
        ]

    def wait_all_up(self, timeout: float = 60) -> None:
        def up() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited: {self.log.read_text()[-2000:]}")
            try:
                scrapes = self.last_scrapes()
            except (httpx.HTTPError, ValueError, PromQLError):
                return False
            return len(scrapes) == self.targets and min(scrapes) > 0

        if not wait_until(up, timeout):
            raise TimeoutError(f"targets not all up: {self.api('targets')}")

    def wait_scraped_after(self, moment: float, timeout: float = 60) -> None:
        """Until every target has been scraped after ``moment`` (a time.time())."""

        def scraped() -> bool:
            scrapes = self.last_scrapes()
            return len(scrapes) == self.targets and min(scrapes) > moment

        if not wait_until(scraped, timeout):
            raise TimeoutError(f"no scrape after {moment}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class PromQLError(Exception):
    pass
