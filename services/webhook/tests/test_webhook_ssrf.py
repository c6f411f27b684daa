"""SSRF: targets outside the allow-list that are not public HTTPS are refused with a clear
400 at create and update, and again at every send. No traffic leaves loopback: DNS answers
come from a stub, and refused addresses are never connected to."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from services.webhook.tests.webhook_support import fast_settings, run_receiver, webhook_service
from switchyard_webhook.ssrf import TargetPolicy, TargetRefusedError


class StubDns:
    """A resolver stub: host -> addresses, changeable during a test."""

    def __init__(self, answers: dict[str, list[str]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        if host not in self.answers:
            raise OSError(f"{host}: no such host")
        return self.answers[host]


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://169.254.169.254/latest/meta-data", "cloud metadata"),
        ("http://127.0.0.1:9/hook", "loopback"),
        ("http://10.0.0.1/hook", "private"),
        ("https://internal.example/hook", "loopback"),  # the stub resolves it to 127.0.0.1
        ("https://[::1]/hook", "loopback"),
        ("http://public.example/hook", "must use https"),
        ("ftp://public.example/hook", "http(s)"),
        ("https://user:pw@public.example/hook", "credentials"),
        ("https://nowhere.example/hook", "does not resolve"),
    ],
)
async def test_refused_targets(url: str, why: str) -> None:
    dns = StubDns({"internal.example": ["127.0.0.1"], "public.example": ["93.184.215.14"]})
    with pytest.raises(TargetRefusedError, match=why.replace("(", r"\(").replace(")", r"\)")):
        await TargetPolicy([], dns).check(url)


async def test_public_https_and_allow_listed_targets_pass() -> None:
    dns = StubDns({"public.example": ["93.184.215.14"], "hooks.local": ["10.1.2.3"]})
    policy = TargetPolicy(["10.1.0.0/16"], dns)
    assert await policy.check("https://public.example/hook") == ["93.184.215.14"]
    # Inside the allow-list, plain HTTP is fine.
    assert await policy.check("http://hooks.local:8080/x") == ["10.1.2.3"]
    # The metadata address stays refused even inside an allowed range.
    with pytest.raises(TargetRefusedError, match="metadata"):
        await TargetPolicy(["169.254.0.0/16"], dns).check("http://169.254.169.254/")
    # One bad address among several refuses the host.
    dns.answers["mixed.example"] = ["93.184.215.14", "192.168.1.1"]
    with pytest.raises(TargetRefusedError, match="private"):
        await policy.check("https://mixed.example/")


async def test_api_refuses_with_clear_400(tmp_path: Path) -> None:
    dns = StubDns({"internal.example": ["127.0.0.1"]})
    settings = fast_settings(tmp_path, egress_allow_cidrs=[])
    async with webhook_service(settings, resolver=dns) as service:
        client = service.client()
        for target in [
            "http://169.254.169.254/",
            "http://127.0.0.1/hook",
            "http://10.0.0.1/hook",
            "https://internal.example/hook",
        ]:
            with pytest.raises(openai.BadRequestError) as info:
                await client.webhooks.create(
                    name="x", url=target, event_types=["response.completed"]
                )
            error = info.value.body
            assert isinstance(error, dict)
            assert error["code"] == "invalid_url" and error["param"] == "url"
            assert "may not use" in error["message"]
        assert (await client.webhooks.list()).data == []


async def test_update_and_send_time_checks(tmp_path: Path) -> None:
    """Allowed at creation, the host later resolves elsewhere: the update is refused, and
    deliveries are refused at send time without connecting."""
    dns = StubDns({})
    settings = fast_settings(tmp_path, egress_allow_cidrs=["127.0.0.0/8"])
    async with run_receiver() as receiver, webhook_service(settings, resolver=dns) as service:
        port = receiver.url.split(":")[2].split("/")[0]
        dns.answers["hooks.example"] = ["127.0.0.1"]
        client = service.client()
        endpoint = await client.webhooks.create(
            name="dns", url=f"http://hooks.example:{port}/hook", event_types=["batch.failed"]
        )
        # Sent to the checked address, with the URL's own Host header.
        await service.publish("batch.failed", {"id": "b1"})
        (first,) = await receiver.wait_accepted(1)
        assert first.headers["host"] == f"hooks.example:{port}"

        with pytest.raises(openai.BadRequestError, match="private"):
            await client.webhooks.update(endpoint.id, url="http://10.0.0.1/hook")
        dns.answers["hooks.example"] = ["169.254.169.254"]
        await service.publish("batch.failed", {"id": "b2"})
        await service.dispatcher.wait_outcomes(lambda o: o["refused"] >= 1, within=20)
        refused = (await service.deliveries(endpoint.id))[0]
        assert refused["status"] == "pending" and refused["attempts"] == 1
        assert refused["error"].startswith("refused:") and "metadata" in refused["error"]
        assert len(receiver.received) == 1
