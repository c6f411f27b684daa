"""Pydantic models for the OpenAI API that more than one service serves: the model list.

Tolerant of unknown fields, like the real API (``extra="allow"``); the worker's request
bodies build on :class:`OpenAIModel` too.
"""

from __future__ import annotations

import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class OpenAIModel(BaseModel):
    model_config = ConfigDict(extra="allow")


class Model(OpenAIModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=lambda: int(time.time()))
    owned_by: str = "switchyard"


class ModelList(OpenAIModel):
    object: Literal["list"] = "list"
    data: list[Model]
