"""README's model table lists every model of the catalog with its price at the data files'
defaults (the lowest and highest of the combinations the menu offers)."""

from __future__ import annotations

import re
from pathlib import Path

from kie_client.catalog import MODELS, Catalog

README = Path(__file__).resolve().parents[2] / "README.md"
ROW = re.compile(r"^\| [^|]+ \| (?P<name>[^|]+) \| `(?P<key>[a-z0-9_]+)` \| `(?P<kie>[^`]+)`[^|]* \| (?P<price>[^|]+) \|$")


def test_readme_lists_every_model_with_its_price():
    rows = {m["key"]: m for m in map(ROW.match, README.read_text(encoding="utf-8").splitlines()) if m}
    assert set(rows) == {s.key for s in MODELS}
    catalog = Catalog()
    for spec in MODELS:
        row = rows[spec.key]
        assert (row["name"], row["kie"]) == (spec.name, spec.kie_model)
        combos = list(catalog.combinations(spec.key))
        if spec.rule.per_second == "audio":
            rates = sorted({spec.rule.unit(c)[0] for c in combos})
            assert row["price"].startswith(" / ".join(f"{float(r):g}" for r in rates) + "⭐ per second"), row["price"]
            continue
        lo, hi = catalog.from_price(spec.key), max(catalog.price(spec.key, c) for c in combos)
        assert row["price"] == (f"{lo}⭐" if lo == hi else f"{lo}–{hi}⭐"), spec.key
