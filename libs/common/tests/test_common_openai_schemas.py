"""The OpenAI model list every service that serves models answers with."""

from __future__ import annotations

from switchyard_common.openai_schemas import Model, ModelList


def test_model_card_defaults_and_unknown_fields_kept() -> None:
    card = Model.model_validate({"id": "m", "max_model_len": 2048})
    assert card.object == "model"
    assert card.owned_by == "switchyard"
    assert card.created > 1_600_000_000
    listed = ModelList(data=[card]).model_dump()
    assert listed["object"] == "list"
    assert listed["data"][0]["id"] == "m"
    assert listed["data"][0]["max_model_len"] == 2048
