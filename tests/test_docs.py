"""The docs describe the package as it is: the reading order lists every file of core/, in the tree's order.

The chapters themselves are doctests (pytest collects docs/*.md without injected
names, so each must import what it uses); this file checks the prose around them.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tinygrad_rnn"
INDEX = (ROOT / "docs" / "index.md").read_text(encoding="utf-8")
READING = INDEX[INDEX.index("## Reading the code") :]


def test_reading_order_lists_every_file_of_core_and_nothing_else() -> None:
    on_disk = {f"core/{p.name}" for p in (PACKAGE / "core").glob("*.py") if p.name != "__init__.py"}
    listed = set(re.findall(r"`(core/\w+\.py)`", READING))
    assert listed == on_disk, f"docs/index.md lists {sorted(listed - on_disk)}, misses {sorted(on_disk - listed)}"


def test_reading_order_follows_the_package_tree() -> None:
    parts = ["core/", "checks/", "nn/", "optim.py", "io/", "inspect/", "cli/"]
    first = [READING.index(f"`{part}") for part in parts]
    assert first == sorted(first), dict(zip(parts, first, strict=True))
    for path in re.findall(r"`((?:checks|nn|io|inspect|cli)/\w+\.py)`", READING):
        assert (PACKAGE / path).is_file(), f"docs/index.md names {path}, which does not exist"
