import pytest

from switchyard_common.errors import AuthenticationError, InvalidRequestError
from switchyard_gateway.breakers import InstanceBreaker
from switchyard_gateway.discovery.base import Instance
from switchyard_gateway.keys import KeyStore, hash_key
from switchyard_gateway.policies import RoundRobin, make_policy
from switchyard_gateway.pool import InstanceState
from switchyard_gateway.request_parsing import parse_body


async def test_keystore_accepts_only_known_keys() -> None:
    store = KeyStore(None, fixed_digests=[hash_key("sk-good")])
    assert (await store.authenticate("Bearer sk-good")).tenant == "default"
    assert (await store.authenticate("bearer   sk-good")).digest == hash_key("sk-good")
    for header, code in [
        (None, "missing_api_key"),
        ("", "missing_api_key"),
        ("Bearer sk-bad", "invalid_api_key"),
        ("Basic sk-good", "invalid_api_key"),
        ("Bearer ", "invalid_api_key"),
    ]:
        with pytest.raises(AuthenticationError) as info:
            await store.authenticate(header)
        assert info.value.code == code
        assert info.value.status_code == 401
        assert "sk-good" not in info.value.message


@pytest.mark.parametrize(
    ("raw", "param", "code"),
    [
        (b"{", None, "invalid_json"),
        (b"[]", None, "invalid_json"),
        (b'{"messages": []}', "model", "missing_required_parameter"),
        (b'{"model": "m"}', "messages", "missing_required_parameter"),
        (b'{"model": "", "messages": []}', "model", None),
        (b'{"model": 1, "messages": []}', "model", None),
    ],
)
def test_parse_body_errors(raw: bytes, param: str | None, code: str | None) -> None:
    with pytest.raises(InvalidRequestError) as info:
        parse_body(raw, ("model", "messages"))
    assert info.value.param == param
    assert info.value.code == code


def test_parse_body_keeps_unknown_fields() -> None:
    body = parse_body(b'{"model": "m", "messages": [], "vendor_x": 1}', ("model", "messages"))
    assert body["vendor_x"] == 1


def state(iid: str, **kw: int) -> InstanceState:
    breaker = InstanceBreaker(iid, fail_max=2, reset_seconds=60)
    return InstanceState(Instance(id=iid, url=f"http://{iid}"), breaker, healthy=True, **kw)


def test_round_robin_rotates_and_lists_all_for_retries() -> None:
    states = [state(str(i)) for i in range(3)]
    policy = make_policy("round-robin", 10)
    assert isinstance(policy, RoundRobin)
    picks = [policy.order(states, None) for _ in range(4)]
    assert [p[0].instance.id for p in picks] == ["0", "1", "2", "0"]
    assert all(sorted(s.instance.id for s in p) == ["0", "1", "2"] for p in picks)
    assert policy.order([], None) == []
