"""Which model runs each one-tap follow-up under a result: kie_client/catalog/followups.toml.

Data, not code: an operator adds a model's "edit" or "better" pair by editing the file. `check`
proves every named model exists and fits its action (an edit or tool model takes one image; a
"better" model makes the same kind of picture from the same inputs)."""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CatalogError
from .spec import Kind, Mode, ModelSpec

FOLLOWUPS_FILE = Path(__file__).with_name("followups.toml")
TOOLS = ("upscale", "remove_bg", "edit")


@dataclass(frozen=True)
class FollowupPlan:
    tools: Mapping[str, str] = field(default_factory=dict)  # upscale / remove_bg / edit → model
    edit: Mapping[str, str] = field(default_factory=dict)  # result's model → its edit model
    better: Mapping[str, str] = field(default_factory=dict)  # result's model → a stronger one

    def edit_model(self, model_key: str) -> str | None:
        return self.edit.get(model_key) or self.tools.get("edit")


def load_followups(path: Path | None = None) -> FollowupPlan:
    path = path or FOLLOWUPS_FILE
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{path.name}: not valid TOML: {exc}", field="file") from None
    tables = {}
    for name in ("tools", "edit", "better"):
        table = data.get(name, {})
        if not isinstance(table, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in table.items()):
            raise CatalogError(f"{path.name}: [{name}] maps model keys to model keys", field=name)
        tables[name] = dict(table)
    unknown = set(tables["tools"]) - set(TOOLS)
    if unknown:
        raise CatalogError(f"{path.name}: [tools] has no action {sorted(unknown)[0]!r}", field="tools")
    return FollowupPlan(**tables)


def check(plan: FollowupPlan, specs: Iterable[ModelSpec]) -> None:
    """Every model named exists and fits: tools and edits take exactly one image (or more), a
    "better" model makes the same kind in the same mode."""
    by_key = {s.key: s for s in specs}

    def get(key: str, where: str) -> ModelSpec:
        spec = by_key.get(key)
        if spec is None:
            raise CatalogError(f"followups.toml: {where}: no model {key!r}", field=where)
        return spec

    for action, key in plan.tools.items():
        spec = get(key, f"tools.{action}")
        if spec.kind is not Kind.IMAGE or spec.mode is not Mode.I2I:
            raise CatalogError(f"followups.toml: tools.{action}: {key} is not an image edit/tool",
                               field=action)
    for source, key in plan.edit.items():
        get(source, f"edit.{source}")
        spec = get(key, f"edit.{source}")
        if spec.mode is not Mode.I2I or not spec.prompt:
            raise CatalogError(f"followups.toml: edit.{source}: {key} is not a prompt edit model",
                               field=source)
    for source, key in plan.better.items():
        old, new = get(source, f"better.{source}"), get(key, f"better.{source}")
        if (old.kind, old.mode) != (new.kind, new.mode) or old.key == new.key:
            raise CatalogError(f"followups.toml: better.{source}: {key} does another job",
                               field=source)
