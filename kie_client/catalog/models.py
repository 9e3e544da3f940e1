"""The packaged model table: kie_client/catalog/data/*.toml, loaded and checked at import.

Pricing reasoning lives beside each price in the data files (1 KIE credit = $0.005; KIE's own
price per unit is kept as `credits` next to our ⭐). The four models of the original system keep
their prices: Seedream 4.5 8⭐, FLUX.2 Pro 12⭐, Kling 2.6 25⭐, Bytedance V1 Pro 30⭐.
"""

from __future__ import annotations

from .loader import load_catalog
from .spec import ModelSpec

MODELS: tuple[ModelSpec, ...] = load_catalog()
