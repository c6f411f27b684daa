"""CLI settings: the only place the CLI reads the environment."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class CliSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SWITCHYARD_", extra="ignore")

    # Development API key for `switchyard up` (SWITCHYARD_API_KEY).
    api_key: SecretStr | None = None
