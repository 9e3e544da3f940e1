"""Figures and goals: what a measure returns, how repeats combine, how a line is printed."""

from __future__ import annotations

import operator
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

_OPS = {">=": operator.ge, "<=": operator.le, "<": operator.lt, ">": operator.gt, "==": operator.eq}


@dataclass
class Goal:
    """`op target unit`, checked against the figure's ratio (in %) when it has a base, else its
    value."""

    op: str
    target: float
    unit: str = ""

    def met(self, x: float) -> bool:
        return _OPS[self.op](x, self.target)

    def __str__(self) -> str:
        return f"goal {self.op} {_num(self.target)}{(' ' + self.unit) if self.unit else ''}"


@dataclass
class Figure:
    name: str
    value: float | None
    unit: str = ""
    base: float | None = None  # the reference the value is a ratio of
    base_label: str = ""
    goal: Goal | None = None
    note: str = ""
    error: str | None = None  # the measure failed: why (value is None)
    runs: list[float | None] = field(default_factory=list)

    @property
    def ratio(self) -> float | None:
        if self.value is None or not self.base:
            return None
        return 100.0 * self.value / self.base

    @property
    def checked(self) -> float | None:
        return self.ratio if self.base is not None else self.value

    @property
    def verdict(self) -> str:
        if self.error is not None or self.value is None:
            return "FAIL" if self.goal else "n/a"
        if self.goal is None:
            return ""
        checked = self.checked
        return "PASS" if checked is not None and self.goal.met(checked) else "FAIL"

    def line(self) -> str:
        head = f"{self.name:<34}"
        if self.error is not None:
            return f"{head}FAILED: {self.error}" + (f"   {self.goal}   FAIL" if self.goal else "")
        text = f"{_num(self.value)}{(' ' + self.unit) if self.unit else ''}"
        if self.base is not None:
            text += f" vs {self.base_label + ' ' if self.base_label else ''}{_num(self.base)}"
            if self.ratio is not None:
                text += f" = {self.ratio:.1f} %"
        parts = [f"{head}{text}"]
        if self.goal:
            parts.append(str(self.goal))
            parts.append(self.verdict)
        line = "   ".join(parts)
        return line + (f"   ({self.note})" if self.note else "")

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["goal"] = str(self.goal) if self.goal else None
        data["ratio"] = self.ratio
        data["verdict"] = self.verdict
        return data


def failed(name: str, error: str, goal: Goal | None = None) -> Figure:
    return Figure(name, None, goal=goal, error=error)


def median_of(runs: list[list[Figure]]) -> list[Figure]:
    """One figure per name: the median of each run's value and base (names in first-seen order).
    A figure that failed in any run is reported failed with that run's reason."""
    names: list[str] = []
    by_name: dict[str, list[Figure]] = {}
    for run in runs:
        for fig in run:
            if fig.name not in by_name:
                names.append(fig.name)
            by_name.setdefault(fig.name, []).append(fig)
    out = []
    for name in names:
        figs = by_name[name]
        first = figs[0]
        broken = next((f for f in figs if f.error is not None or f.value is None), None)
        if broken is not None:
            fig = Figure(name, None, first.unit, goal=first.goal, error=broken.error or "no value",
                         runs=[f.value for f in figs])
        else:
            bases = [f.base for f in figs if f.base is not None]
            fig = Figure(name, statistics.median(f.value for f in figs), first.unit,  # type: ignore[misc]
                         statistics.median(bases) if bases else None, first.base_label, first.goal,
                         first.note, runs=[f.value for f in figs])
        out.append(fig)
    return out


def _num(x: float | None) -> str:
    if x is None:
        return "-"
    if abs(x) >= 100 or float(x).is_integer():
        return f"{x:.0f}" if float(x).is_integer() else f"{x:.1f}"
    return f"{x:.2f}" if abs(x) < 10 else f"{x:.1f}"
