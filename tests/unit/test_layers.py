"""The layering of docs/architecture.md, checked on the source: no product module imports a fake,
and no product module imports a package above its own.

    kie_client, storage        (import nothing of ours; storage never kie_client and back)
    migrations                 (the schema's history: storage)
    bot                        (the service core: kie_client, storage)
    handlers                   (what people see: bot, kie_client, storage)
    kiebot                     (the composition root and CLI: everything above)
    testkit                    (fakes, the local stack, the demo: not imported by the product)
    bench                      (the benchmark: test-side like testkit, not imported by the product)
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

ALLOWED: dict[str, set[str]] = {
    "kie_client": set(),
    "storage": set(),
    "migrations": {"storage"},
    "bot": {"kie_client", "storage"},
    "handlers": {"bot", "kie_client", "storage"},
    "kiebot": {"bot", "handlers", "kie_client", "storage", "migrations"},
}
# Test-side packages: never imported by the product (bench/ is the benchmark, like testkit).
TEST_SIDE = {"testkit", "tests", "bench"}
OURS = set(ALLOWED) | TEST_SIDE


def imported_packages(path: Path) -> set[str]:
    """Top-level names of our packages that `path` imports, anywhere in the file (function-level
    imports included: a lazy import is still a dependency)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & OURS


def product_modules() -> list[tuple[str, Path]]:
    return [(package, path) for package in ALLOWED
            for path in sorted((ROOT / package).rglob("*.py"))]


def test_every_product_package_is_checked():
    on_disk = {p.parent.name for p in ROOT.glob("*/__init__.py")} - TEST_SIDE
    assert on_disk == set(ALLOWED), "a new top-level package needs its place in ALLOWED"


@pytest.mark.parametrize(("package", "path"), product_modules(),
                         ids=lambda v: str(v.relative_to(ROOT)) if isinstance(v, Path) else v)
def test_product_module_imports_no_fake_and_nothing_above_it(package: str, path: Path):
    wrong = imported_packages(path) - ALLOWED[package] - {package}
    assert not wrong, f"{path.relative_to(ROOT)} ({package}) imports {sorted(wrong)}"


def test_the_checker_sees_a_lazy_upward_import(tmp_path: Path):
    sample = tmp_path / "sample.py"
    sample.write_text("def f():\n    from testkit.stack import LocalStack\n    import handlers\n")
    assert imported_packages(sample) == {"testkit", "handlers"}
