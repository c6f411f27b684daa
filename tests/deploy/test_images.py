"""The services' Dockerfiles: hadolint, pinned bases, the uv layers, and a hardened runtime.

No engine builds the images here; these checks read the Dockerfiles, lint them with the real
hadolint, and replay the dependency layer's ``uv sync`` on exactly the files it is given.
test_image_closure.py starts each service from its image's environment.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from switchyard_gateway.config import GatewaySettings
from switchyard_model_worker.config import WorkerSettings
from switchyard_session.config import SessionSettings
from switchyard_webhook.config import WebhookSettings
from tests.deploy.dockerfiles import (
    ROOT,
    SERVICES,
    Dockerfile,
    dockerfile_path,
    package_module,
    parse,
)
from tests.deploy.dockerignore import is_ignored

SETTINGS = {
    "gateway": GatewaySettings,
    "model-worker": WorkerSettings,
    "session": SessionSettings,
    "webhook": WebhookSettings,
}
# An exact release: a version tag (3.11.13-slim-bookworm, 12.6.3-devel-ubuntu22.04, 0.13.9),
# optionally with a digest. Never a moving tag such as latest, 3.11 or slim.
PINNED = re.compile(r"^[\w./-]+:v?\d+\.\d+\.\d+[\w.-]*(@sha256:[0-9a-f]{64})?$")


def bin_tool(name: str) -> str:
    """A tool installed into this virtualenv by the dev dependencies (not one on PATH)."""
    path = Path(sys.executable).parent / name
    assert path.exists(), f"{name} is a dev dependency: run `make install`"
    return str(path)


@pytest.fixture(scope="module", params=SERVICES)
def service(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def dockerfile(service: str) -> Dockerfile:
    return parse(dockerfile_path(service))


def test_hadolint_finds_nothing() -> None:
    paths = [str(dockerfile_path(s)) for s in SERVICES]
    done = subprocess.run(
        [bin_tool("hadolint"), "--no-color", "--failure-threshold", "info", *paths],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_base_images_are_pinned_to_exact_versions(dockerfile: Dockerfile) -> None:
    images = dockerfile.external_images()
    assert images, "no base image found"
    for image in images:
        assert PINNED.match(image), f"{dockerfile.path}: {image} is not an exact version"


def test_dependency_layer_comes_before_the_source(dockerfile: Dockerfile, service: str) -> None:
    """``--no-install-workspace`` first (the cached layer), then the source, then the project
    itself, non-editable, without dev dependencies, exactly as locked."""
    deps = dockerfile.sync_command(dependencies_only=True)
    final = dockerfile.sync_command(dependencies_only=False)
    for command in (deps, final):
        assert {"--frozen", "--no-dev"} <= set(command), command
        assert command[command.index("--package") + 1] == f"switchyard-{service}", command
    assert "--no-editable" in final
    builder = dockerfile.stage("builder")
    deps_line = min(i.line for i in builder.of("RUN") if "--no-install-workspace" in i.args)
    source_copies = [i.line for i in builder.of("COPY") if "/src" in i.args]
    assert source_copies and min(source_copies) > deps_line, "source copied before the deps layer"


def test_dependency_layer_needs_only_the_manifests_it_copies(
    dockerfile: Dockerfile, tmp_path: Path
) -> None:
    """Replay the dependency layer on just the files copied before it (uv, dry run)."""
    builder = dockerfile.stage("builder")
    deps_line = min(i.line for i in builder.of("RUN") if "--no-install-workspace" in i.args)
    for copy in builder.of("COPY"):
        words = copy.words()
        if copy.line > deps_line or any(w.startswith("--from") for w in words):
            continue
        assert "--parents" in words, f"{copy.args}: copy manifests with --parents"
        for pattern in [w for w in words if not w.startswith("--")][:-1]:
            matches = sorted(ROOT.glob(pattern))
            assert matches, f"{pattern} matches nothing"
            for source in matches:
                target = tmp_path / source.relative_to(ROOT)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, target)
    uv = shutil.which("uv")
    assert uv
    command = dockerfile.sync_command(dependencies_only=True)
    done = subprocess.run(
        [uv, *command[1:], "--dry-run"],
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "UV_PYTHON": sys.executable}
        | {"UV_PROJECT_ENVIRONMENT": str(tmp_path / "venv"), "UV_CACHE_DIR": uv_cache_dir()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Would install" in done.stderr or "Would" in done.stderr, done.stderr


def uv_cache_dir() -> str:
    done = subprocess.run([shutil.which("uv") or "uv", "cache", "dir"], capture_output=True)
    return done.stdout.decode().strip()


def test_runtime_is_non_root_exec_form_and_stops_on_sigterm(
    dockerfile: Dockerfile, service: str
) -> None:
    final = dockerfile.final
    (user,) = final.of("USER")
    uid, _, gid = user.args.partition(":")
    assert uid.isdigit() and int(uid) > 0, "a numeric, non-root UID (runAsNonRoot checks it)"
    assert not gid or (gid.isdigit() and int(gid) > 0)
    assert [i.args for i in final.of("STOPSIGNAL")] == ["SIGTERM"]
    assert dockerfile.entrypoint() == ["/app/.venv/bin/python", "-m", package_module(service)]
    assert not final.of("CMD") and not final.of("RUN"), "nothing in the runtime needs a shell"
    # The runtime gets the virtualenv from the builder and builds nothing itself.
    copies = [i.words() for i in final.of("COPY")]
    assert ["--from=builder", "/app/.venv", "/app/.venv"] in copies


def test_runtime_settings_are_real_settings(dockerfile: Dockerfile, service: str) -> None:
    """Every SWITCHYARD_ variable the image sets is a field of the service's settings, the
    service listens on all interfaces, and the exposed port is the one it listens on."""
    settings = SETTINGS[service]
    prefix = str(settings.model_config["env_prefix"])
    env = dockerfile.env(dockerfile.final)
    for variant in ("runtime-cpu", "runtime-cuda"):
        if any(s.name == variant for s in dockerfile.stages):
            env |= dockerfile.env(dockerfile.stage(variant))
    ours = {k: v for k, v in env.items() if k.startswith("SWITCHYARD_")}
    for key in ours:
        assert key.startswith(prefix), key
        assert key.removeprefix(prefix).lower() in settings.model_fields, key
    assert ours[f"{prefix}HOST"] == "0.0.0.0"
    (expose,) = dockerfile.final.of("EXPOSE")
    assert expose.args == ours[f"{prefix}PORT"] == str(settings.model_fields["port"].default)
    assert env["HOME"] == "/tmp", "a writable HOME on a read-only root filesystem"


def test_model_worker_variants_are_chosen_by_a_build_argument() -> None:
    dockerfile = parse(dockerfile_path("model-worker"))
    assert dockerfile.global_args["VARIANT"] == "cpu"
    chains = {}
    for variant in ("cpu", "cuda"):
        args = {"VARIANT": variant}
        builder = dockerfile.resolve_base(dockerfile.stage("builder"), args)
        runtime = dockerfile.resolve_base(dockerfile.final, args)
        assert not isinstance(builder, str) and builder.name == f"builder-{variant}"
        assert not isinstance(runtime, str) and runtime.name == f"runtime-{variant}"
        chains[variant] = (
            dockerfile.image_chain(builder, args),
            dockerfile.image_chain(runtime, args),
            dockerfile.env(builder)["CMAKE_ARGS"],
        )
    cpu_build, cpu_run, cpu_cmake = chains["cpu"]
    cuda_build, cuda_run, cuda_cmake = chains["cuda"]
    assert cpu_build.startswith("python:") and cpu_run.startswith("python:")
    assert "-DGGML_CUDA=on" not in cpu_cmake and "-DGGML_NATIVE=OFF" in cpu_cmake
    assert cuda_build.startswith("nvidia/cuda:") and "-devel-" in cuda_build
    assert cuda_run.startswith("nvidia/cuda:") and "-runtime-" in cuda_run
    assert cuda_build.split("-")[0] == cuda_run.split("-")[0], "one CUDA version for both"
    assert "-DGGML_CUDA=on" in cuda_cmake


def test_build_context_holds_what_the_dockerfiles_copy_and_no_more() -> None:
    copied = ["pyproject.toml", "uv.lock", "libs/common/src/switchyard_common/app.py"]
    for service in SERVICES:
        copied += [f"services/{service}/pyproject.toml", f"services/{service}/src/x/y.py"]
    for path in copied:
        assert not is_ignored(path), f"{path} is left out of the build context"
    for path in (
        ".venv/bin/python",
        ".git/HEAD",
        ".switchyard/api-key",
        "services/gateway/tests/test_x.py",
        "libs/common/src/switchyard_common/__pycache__/app.cpython-311.pyc",
        "charts/switchyard/values.yaml",
    ):
        assert is_ignored(path), f"{path} is sent to the image build"


def test_dockerfiles_agree_on_python_and_uv() -> None:
    """The per-service Dockerfiles repeat their build on purpose (one per service, each
    buildable alone); their pins must not drift apart."""
    for arg in ("PYTHON_IMAGE", "UV_IMAGE"):
        pins = {s: parse(dockerfile_path(s)).global_args[arg] for s in SERVICES}
        assert len(set(pins.values())) == 1, f"{arg} differs: {pins}"
    worker = parse(dockerfile_path("model-worker")).global_args
    python_version = worker["PYTHON_IMAGE"].split(":")[1].split("-")[0]
    assert worker["PYTHON_VERSION"] == python_version, "the CUDA variant's Python drifts"
    assert worker["PYTHON_BUILD_IMAGE"] == f"python:{python_version}-bookworm"
