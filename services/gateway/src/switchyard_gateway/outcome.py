"""What happened upstream for one request, for metrics and token accounting."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Outcome:
    model: str = ""  # the model that answered (after aliases and fallbacks)
    upstream_seconds: float = 0.0
    first_byte_at: float = 0.0  # monotonic time of a stream's first chunk
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: list[str] = field(default_factory=list)  # one reason per retry
