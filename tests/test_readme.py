"""The README's examples run as written against a running platform."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fixtures import Platform

README = Path(__file__).resolve().parents[1] / "README.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def adapt(code: str, platform: Platform, cwd: Path) -> str:
    (cwd / ".switchyard").mkdir(exist_ok=True)
    (cwd / ".switchyard" / "api-key").write_text(platform.api_key + "\n")
    return code.replace("http://127.0.0.1:8080", platform.gateway)


def test_readme_opens_with_the_two_commands() -> None:
    first = blocks("bash")[0]
    assert first.splitlines()[0].startswith("make run")
    assert first.splitlines()[1].startswith("make test")


@pytest.mark.parametrize("index", [0, 1, 2])
def test_curl_examples(platform: Platform, tmp_path: Path, index: int) -> None:
    curls = [b for b in blocks("bash") if b.lstrip().startswith("curl")]
    assert len(curls) == 3
    out = subprocess.run(
        ["bash", "-c", adapt(curls[index], platform, tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    if "stream" in curls[index]:
        assert out.stdout.rstrip().endswith("data: [DONE]")
    elif "embeddings" in curls[index]:
        assert '"object":"embedding"' in out.stdout
    else:
        assert '"object":"chat.completion"' in out.stdout


def test_key_admin_example(platform: Platform, tmp_path: Path) -> None:
    (block,) = [b for b in blocks("bash") if b.startswith("ADMIN=")]
    script = adapt(block, platform, tmp_path).replace("KEY_ID", "$(cat id)")
    lines = [re.sub(r"\s+# .*$", "", line) for line in script.splitlines()]
    # Create (keeping the id), list, revoke.
    create = "\n".join(lines[:3])
    create += (
        " | tee created | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"id\"])' > id"
    )
    out = subprocess.run(
        ["bash", "-c", create + "\n" + "\n".join(lines[3:])],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    created = (tmp_path / "created").read_text()
    assert '"tenant":"acme"' in created and '"key":"sk-sy-' in created
    assert '"revoked":true' in out.stdout


def test_python_sdk_example(platform: Platform, tmp_path: Path) -> None:
    code = blocks("python")[0]
    out = subprocess.run(
        [sys.executable, "-c", adapt(code, platform, tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    assert "CompletionUsage(" in out.stdout
    assert len(out.stdout.strip().splitlines()) >= 3


def test_background_response_webhook_example(platform: Platform, tmp_path: Path) -> None:
    (code,) = [b for b in blocks("python") if "client.webhooks.unwrap" in b]
    assert "background=True" in code
    out = subprocess.run(
        [sys.executable, "-c", adapt(code, platform, tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    status, delivery, *text = out.stdout.strip().splitlines()
    assert status == "queued"
    # The delivery passed unwrap (else the receiver raised and none arrived), names the
    # response, and ends it the way the model did (a length stop is ``incomplete``).
    assert delivery in ("response.completed True", "response.incomplete True")
    assert "".join(text).strip()


def test_stateful_conversation_example(platform: Platform, tmp_path: Path) -> None:
    (code,) = [b for b in blocks("python") if "client.conversations.create" in b]
    out = subprocess.run(
        [sys.executable, "-c", adapt(code, platform, tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    lines = out.stdout.strip().splitlines()
    # The second turn's prompt held the first turn: the worker counted more tokens.
    (counts,) = [line for line in lines if line.startswith("prompt tokens:")]
    first, second = (int(n) for n in counts.split()[2::2])
    assert second > first
    # The conversation kept both turns: two inputs and two answers, in order.
    roles = [line.split(":")[0] for line in lines if line.startswith(("user:", "assistant:"))]
    assert roles == ["user", "assistant", "user", "assistant"]
