"""What every measure gets: the options of this invocation and a fresh directory per run."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .world import RunOptions


@dataclass
class Context:
    workdir: Path
    db: str = "sqlite"
    users: int = 1000       # the updates measure's crowd
    chats: int = 200        # create pace, delivery and callbacks
    pending: int = 10_000   # polling 10k
    say: Callable[[str], None] = print
    _runs: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def options(self) -> RunOptions:
        return RunOptions(db=self.db)

    def run_dir(self, name: str) -> Path:
        """A new directory for one world of one run (logs stay there for a post-mortem)."""
        path = self.workdir / f"{next(self._runs):02d}-{name}"
        path.mkdir(parents=True)
        return path
