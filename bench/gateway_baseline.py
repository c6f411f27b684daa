"""``--baseline-ref``: an older gateway, from a temporary git worktree, beside ours.

The worktree is checked out at the ref (detached); its gateway runs from the same venv with
``PYTHONPATH=<worktree>/libs/common/src:<worktree>/services/gateway/src``, which comes before
the venv's editable installs on ``sys.path``, so both packages are the old ones.
:meth:`Baseline.check` proves that before anything is measured.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from gateway_common import REPO, log


def _git(*args: str) -> str:
    out = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {out.stderr.strip()}")
    return out.stdout.strip()


@dataclass
class Baseline:
    ref: str
    commit: str
    path: Path

    @property
    def target(self) -> str:
        return f"gateway@{self.ref}"

    def env(self) -> dict[str, str]:
        src = [self.path / "libs" / "common" / "src", self.path / "services" / "gateway" / "src"]
        return {"PYTHONPATH": os.pathsep.join(str(p) for p in src)}

    def check(self) -> dict[str, str]:
        """Where the baseline's gateway and common packages import from (the worktree)."""
        code = (
            "import switchyard_common as c, switchyard_gateway as g; print(c.__file__, g.__file__)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, **self.env()},
            capture_output=True,
            text=True,
            check=True,
        )
        common, gateway = out.stdout.split()
        for path in (common, gateway):
            if not Path(path).resolve().is_relative_to(self.path.resolve()):
                raise SystemExit(f"{self.target}: {path} is not from the worktree {self.path}")
        return {"commit": self.commit, "switchyard_common": common, "switchyard_gateway": gateway}


@contextmanager
def baseline_worktree(ref: str) -> Iterator[Baseline]:
    """Check ``ref`` out into a temporary worktree for the run; removed afterwards."""
    commit = _git("rev-parse", "--verify", f"{ref}^{{commit}}")
    with tempfile.TemporaryDirectory(prefix="switchyard-baseline-") as tmp:
        path = Path(tmp) / "worktree"
        _git("worktree", "add", "--detach", "--quiet", str(path), commit)
        log(f"baseline {ref} ({commit[:12]}) checked out in {path}")
        try:
            yield Baseline(ref, commit, path)
        finally:
            _git("worktree", "remove", "--force", str(path))
