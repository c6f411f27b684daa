"""Each image's dependency closure, proven without a container engine.

For every service, the Dockerfile's own final ``uv sync`` (read from the Dockerfile, so the two
cannot drift) installs into a fresh, empty environment; the Dockerfile's own entrypoint then
starts the service from that environment alone: isolated mode (no ``PYTHONPATH``, no working
directory on ``sys.path``), a read-only working directory outside the repository, the image's
environment variables, and an unprivileged user. ``/readyz`` must answer 200 and SIGTERM must
stop it cleanly. A runtime dependency missing from a service's ``pyproject.toml`` (the gateway's
``httptools`` was one) fails here, as it would in the image.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.deploy.adapter import series_of_service
from tests.deploy.dockerfiles import ROOT, SERVICES, package_module, parse
from tests.support.procs import free_port, wait_ready

pytestmark = pytest.mark.timeout(900)

NOBODY = 65534
VENV_IN_IMAGE = "/app/.venv"
# Paths the images write to (volumes in the chart), mapped into the sandbox.
WRITABLE_IN_IMAGE = ("/tmp", "/data")
# Built from source when installed (see sync_closure).
PREBUILT = ("llama-cpp-python",)


def as_unprivileged() -> list[str]:
    """The prefix that runs a command as ``nobody`` (when the tests run as root)."""
    if os.geteuid() != 0:
        return []  # already unprivileged
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]


def unprivileged_python() -> str:
    """A Python 3.11+ interpreter the unprivileged user can run (a pyenv build under /root,
    for instance, is out of its reach)."""
    candidates = [
        getattr(sys, "_base_executable", sys.executable),
        shutil.which("python3.11"),
        "/usr/bin/python3.11",
        "/usr/local/bin/python3.11",
        "/usr/bin/python3",
    ]
    check = "import sys; print(sys.version_info >= (3, 11))"
    for candidate in dict.fromkeys(c for c in candidates if c and Path(c).exists()):
        probe = subprocess.run(
            [*as_unprivileged(), candidate, "-c", check], capture_output=True, text=True
        )
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            return candidate
    pytest.fail("no Python >= 3.11 that an unprivileged user may run (install python3.11)")


def make_dir(path: Path, *, writable: bool) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o755 if writable else 0o555)
    if writable and os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)
    return path


def copy_prebuilt(package: str, venv: Path) -> None:
    """Install ``package`` into ``venv`` from the workspace environment's files (its RECORD),
    after checking it is the version the lock pins."""
    dist = metadata.distribution(package)
    locked = re.search(rf'name = "{package}"\nversion = "([^"]+)"', (ROOT / "uv.lock").read_text())
    assert locked and dist.version == locked.group(1), f"{package}: run `make install`"
    (site,) = venv.glob("lib/python*/site-packages")
    for file in dist.files or []:
        assert not str(file).startswith(".."), f"{package} installs outside site-packages"
        target = site / file
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(Path(str(dist.locate_file(file))), target)


def sync_closure(service: str, venv: Path, python: str) -> Path:
    """Run the Dockerfile's final ``uv sync`` into ``venv``; raises with uv's output.

    Packages built from source (llama-cpp-python: minutes of C++) come prebuilt from the
    workspace environment when the sync would install them: uv revalidates an sdist whose
    HTTP response carries no caching headers, and a changed answer means a rebuild.
    """
    argv = parse(ROOT / "services" / service / "Dockerfile").sync_command(dependencies_only=False)
    assert f"switchyard-{service}" in argv and "--no-editable" in argv, argv
    uv = shutil.which("uv")
    assert uv, "uv is needed (make install installs it)"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env |= {"UV_PROJECT_ENVIRONMENT": str(venv), "UV_PYTHON": python, "UV_LINK_MODE": "copy"}

    def uv_sync(*extra: str) -> str:
        done = subprocess.run(
            [uv, *argv[1:], *extra], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(argv + list(extra))}:\n{done.stdout}\n{done.stderr}")
        return done.stderr

    plan = uv_sync("--dry-run")
    prebuilt = [p for p in PREBUILT if re.search(rf"^ \+ {p}==", plan, re.MULTILINE)]
    uv_sync(*(f"--no-install-package={p}" for p in prebuilt))
    for package in prebuilt:
        copy_prebuilt(package, venv)
    return venv


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Path]:
    """A world-readable scratch directory (pytest's own tmp_path is private to its user)."""
    root = Path(tempfile.mkdtemp(prefix="switchyard-closure-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def closures(sandbox: Path) -> dict[str, Path | Exception]:
    """All four environments, synced in parallel from uv's cache."""
    python = unprivileged_python()
    with ThreadPoolExecutor(len(SERVICES)) as pool:
        futures = {s: pool.submit(sync_closure, s, sandbox / s / "venv", python) for s in SERVICES}
    results: dict[str, Path | Exception] = {}
    for service, future in futures.items():
        error = future.exception()
        results[service] = error if isinstance(error, Exception) else future.result()
    return results


def image_env(service: str, box: Path, port: int) -> dict[str, str]:
    """The final stage's ``ENV``, its writable paths mapped into ``box``; bound to localhost."""
    dockerfile = parse(ROOT / "services" / service / "Dockerfile")
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    for key, value in dockerfile.env(dockerfile.final).items():
        for path in WRITABLE_IN_IMAGE:
            if value == path or value.startswith(path + "/"):
                value = str(make_dir(box / path.strip("/"), writable=True)) + value[len(path) :]
        env[key] = value
    prefix = f"SWITCHYARD_{service.replace('-', '_').upper()}_"
    env |= {f"{prefix}HOST": "127.0.0.1", f"{prefix}PORT": str(port)}
    if service in ("session", "webhook"):
        env[f"{prefix}AUTO_MIGRATE"] = "true"  # the embedded database, as `switchyard up` runs it
    return env


@pytest.mark.parametrize("service", SERVICES)
def test_service_starts_from_its_image_closure_alone(
    service: str, closures: dict[str, Path | Exception], sandbox: Path
) -> None:
    venv = closures[service]
    if isinstance(venv, Exception):
        pytest.fail(str(venv))
    # Nothing in the environment points back into the repository (no editable installs).
    for pth in venv.glob("lib/python*/site-packages/*.pth"):
        assert str(ROOT) not in pth.read_text(), f"{pth} points into the workspace"

    entrypoint = parse(ROOT / "services" / service / "Dockerfile").entrypoint()
    assert entrypoint == [f"{VENV_IN_IMAGE}/bin/python", "-m", package_module(service)]
    python = str(venv / entrypoint[0].removeprefix(VENV_IN_IMAGE + "/"))
    argv = [*as_unprivileged(), python, "-I", *entrypoint[1:]]

    box = sandbox / service
    cwd = make_dir(box / "cwd", writable=False)
    port = free_port()
    log_path = box / "service.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            argv,
            cwd=cwd,
            env=image_env(service, box, port),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        try:
            wait_ready(f"http://127.0.0.1:{port}", proc, timeout=240)
        except Exception as exc:
            pytest.fail(f"{exc}\n--- {service} log ---\n{log_path.read_text()[-6000:]}")
        # What the prometheus-adapter rules in k8s/addons read, the running service exports.
        scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        names = {s.name for f in text_string_to_metric_families(scraped) for s in f.samples}
        assert set(series_of_service(service)) <= names
        proc.send_signal(signal.SIGTERM)  # the images' STOPSIGNAL
        # uvicorn re-raises the signal once it has shut down cleanly.
        assert proc.wait(timeout=60) in (0, -signal.SIGTERM), log_path.read_text()[-6000:]
        assert "Application shutdown complete" in log_path.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
