"""values.schema.json really validates: Helm refuses wrong values before rendering anything."""

from __future__ import annotations

import json
from typing import Any

import helm_python as helm
import jsonschema
import pytest
import yaml

from tests.chart.render import CHART, SCENARIOS, scenario_values


def _pool(**extra: Any) -> dict[str, Any]:
    return {"modelWorker": {"pools": [{"name": "p", "model": "m", **extra}]}}


WRONG = {
    "string replicas": {"gateway": {"replicas": "2"}},
    "unknown backend": _pool(backend="tensorrt"),
    "negative GPU count": _pool(gpu={"count": -1}),
    "misspelled key": {"gateway": {"replcas": 2}},
    "misspelled top-level key": {"gatway": {}},
    "misspelled pool key": _pool(gpus={"count": 1}),
    "unknown engine kind": _pool(engine={"kind": "sglang"}),
    "pool without a model": {"modelWorker": {"pools": [{"name": "p"}]}},
    "pool name not a DNS label": _pool(name="GPU_Pool"),
    "no pools": {"modelWorker": {"pools": []}},
    "zero minReplicas": {"gateway": {"autoscaling": {"minReplicas": 0}}},
    "bad log level": {"session": {"logLevel": "verbose"}},
    "bad digest": {"gateway": {"image": {"digest": "latest"}}},
    "key digest not SHA-256": {"gateway": {"auth": {"apiKeyHashes": ["sk-plaintext"]}}},
    "setting not upper case": {"gateway": {"settings": {"routing_policy": "round-robin"}}},
    "non-integer queue depth target": _pool(autoscaling={"queueDepthPerPod": "many"}),
    "zero dispatcher concurrency": {"webhook": {"dispatcher": {"concurrency": 0}}},
    "zero batch size": {"webhook": {"dispatcher": {"batchSize": 0}}},
    "zero poll interval": {"webhook": {"dispatcher": {"pollSeconds": 0}}},
    "string dispatcher switch": {"webhook": {"dispatcher": {"enabled": "yes"}}},
    "misspelled dispatcher key": {"webhook": {"dispatcher": {"concurency": 8}}},
    "negative jitter": {"webhook": {"delivery": {"retryJitter": -0.1}}},
    "jitter above 1": {"webhook": {"delivery": {"retryJitter": 1.5}}},
    "string port": {"webhook": {"delivery": {"ports": ["443"]}}},
    "port out of range": {"webhook": {"delivery": {"ports": [70000]}}},
    "no delivery port": {"webhook": {"delivery": {"ports": []}}},
    "negative retry wait": {"webhook": {"delivery": {"retryScheduleSeconds": [5, -1]}}},
    "zero endpoint concurrency": {"webhook": {"delivery": {"endpointConcurrency": 0}}},
    "zero retention": {"webhook": {"delivery": {"retentionSeconds": 0}}},
    "misspelled auto-disable key": {"webhook": {"delivery": {"autoDisable": {"failure": 3}}}},
    "empty operator tenant": {"webhook": {"operatorTenant": ""}},
}


@pytest.fixture(scope="module")
def chart():
    with helm.Chart.load(str(CHART)) as c:
        yield c


@pytest.mark.parametrize("case", sorted(WRONG))
def test_schema_rejects(chart, case: str) -> None:
    with pytest.raises(helm.HelmValuesError):
        chart.validate_schema(WRONG[case])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_schema_accepts_every_scenario(chart, scenario: str) -> None:
    chart.validate_schema(scenario_values(scenario))


def test_schema_accepts_gpu_and_engine_pools(chart) -> None:
    chart.validate_schema(_pool(gpu={"count": 0}, engine={"kind": "vllm", "model": "org/m"}))
    chart.validate_schema(_pool(backend="embeddings", replicas=0))


def test_schema_is_valid_json_schema_and_closed() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    assert schema["additionalProperties"] is False
    # The defaults themselves are valid, checked by an independent validator too.
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    jsonschema.Draft7Validator(schema).validate(defaults)


def test_schema_enums_match_the_worker() -> None:
    from typing import get_args

    from switchyard_model_worker.config import BackendName

    schema = json.loads((CHART / "values.schema.json").read_text())
    backend = schema["$defs"]["pool"]["properties"]["backend"]["enum"]
    assert sorted(backend) == sorted(get_args(BackendName))
    engines = schema["$defs"]["pool"]["properties"]["engine"]["properties"]["kind"]["enum"]
    assert sorted(engines) == ["", "llamacpp-server", "tgi", "vllm"]


RENDER_REFUSES = {
    "two pools, one name": {
        "modelWorker": {"pools": [{"name": "a", "model": "m"}, {"name": "a", "model": "n"}]}
    },
    "pool min above max": _pool(autoscaling={"enabled": True, "minReplicas": 5, "maxReplicas": 2}),
    "keda min above max": _pool(keda={"enabled": True, "minReplicaCount": 3, "maxReplicaCount": 1}),
    "gateway min above max": {"gateway": {"autoscaling": {"minReplicas": 5, "maxReplicas": 2}}},
}


@pytest.mark.parametrize("case", sorted(RENDER_REFUSES))
def test_render_refuses_what_the_schema_cannot_say(chart, case: str) -> None:
    chart.validate_schema(RENDER_REFUSES[case])
    with pytest.raises(helm.HelmError):
        chart.render(RENDER_REFUSES[case], name="rel", namespace="sy")
