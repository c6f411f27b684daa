"""Read the services' Dockerfiles: instructions, stages, build arguments, the uv commands.

Enough of the Dockerfile grammar for the deployment tests (line continuations, comments,
parser directives, ``ARG`` defaults and ``${VAR}`` in ``FROM``); the images themselves are
never built here.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("gateway", "model-worker", "session", "webhook")


def dockerfile_path(service: str) -> Path:
    return ROOT / "services" / service / "Dockerfile"


def package_module(service: str) -> str:
    """``model-worker`` -> ``switchyard_model_worker``."""
    return "switchyard_" + service.replace("-", "_")


@dataclass
class Instruction:
    keyword: str  # upper case
    args: str  # the rest, continuations joined
    line: int  # 1-based line of the keyword

    def words(self) -> list[str]:
        return shlex.split(self.args)


@dataclass
class Stage:
    base: str  # as written, e.g. ``${PYTHON_IMAGE}`` or ``builder-${VARIANT}``
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def of(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


@dataclass
class Dockerfile:
    path: Path
    global_args: dict[str, str]  # ARGs before the first FROM, with their defaults
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        return next(s for s in self.stages if s.name == name)

    def expand(self, text: str, overrides: dict[str, str] | None = None) -> str:
        values = {**self.global_args, **(overrides or {})}
        return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: values[m.group(1) or m.group(2)], text)

    def resolve_base(self, stage: Stage, overrides: dict[str, str] | None = None) -> Stage | str:
        """The stage a ``FROM`` names, or the image reference it resolves to."""
        ref = self.expand(stage.base, overrides)
        named = [s for s in self.stages if s.name == ref]
        return named[0] if named else ref

    def image_chain(self, stage: Stage, overrides: dict[str, str] | None = None) -> str:
        """The external image a stage is ultimately built on."""
        base = self.resolve_base(stage, overrides)
        return self.image_chain(base, overrides) if isinstance(base, Stage) else base

    def external_images(self) -> set[str]:
        """Every image reference a ``FROM`` or ``COPY --from`` pulls, defaults applied."""
        names = {s.name for s in self.stages}
        refs = {self.expand(s.base) for s in self.stages}
        for s in self.stages:
            for copy in s.of("COPY"):
                refs.update(w.split("=", 1)[1] for w in copy.words() if w.startswith("--from="))
        return {r for r in refs if r not in names and "${" not in r}

    def uv_syncs(self) -> list[list[str]]:
        """Each ``uv sync ...`` command of the build, as argv (``uv`` first)."""
        found = []
        for stage in self.stages:
            for run in stage.of("RUN"):
                for command in re.split(r"&&|;", run.args):
                    words = shlex.split(command)
                    while words and words[0].startswith("--"):
                        words.pop(0)  # RUN's own flags (--mount=...)
                    if words[:2] == ["uv", "sync"]:
                        found.append(words)
        return found

    def sync_command(self, *, dependencies_only: bool) -> list[str]:
        """The dependency-layer sync (``--no-install-workspace``) or the final one."""
        syncs = self.uv_syncs()
        wanted = [c for c in syncs if ("--no-install-workspace" in c) is dependencies_only]
        assert len(wanted) == 1, f"{self.path}: expected one such uv sync, found {wanted}"
        return wanted[0]

    def entrypoint(self) -> list[str]:
        (entry,) = self.final.of("ENTRYPOINT")
        value = json.loads(entry.args)  # exec form only: a JSON array
        assert isinstance(value, list)
        return [str(v) for v in value]

    def env(self, stage: Stage) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in stage.of("ENV"):
            for word in instruction.words():
                key, _, value = word.partition("=")
                values[key] = value
        return values


def _logical_lines(text: str) -> list[tuple[int, str]]:
    lines: list[tuple[int, str]] = []
    current: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if not current:
            start = number
        if stripped.endswith("\\"):
            current.append(stripped[:-1].strip())
            continue
        current.append(stripped)
        lines.append((start, " ".join(part for part in current if part)))
        current = []
    return lines


def parse(path: Path) -> Dockerfile:
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for number, line in _logical_lines(path.read_text()):
        keyword, _, args = line.partition(" ")
        instruction = Instruction(keyword.upper(), args.strip(), number)
        if instruction.keyword == "FROM":
            words = instruction.words()
            words = [w for w in words if not w.startswith("--platform")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(words[0], name))
        elif instruction.keyword == "ARG" and not stages:
            key, _, default = instruction.args.partition("=")
            global_args[key] = default
        elif stages:
            stages[-1].instructions.append(instruction)
    return Dockerfile(path, global_args, stages)
