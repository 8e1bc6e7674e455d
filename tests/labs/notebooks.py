"""Which notebooks the lab tests cover, and helpers to read their cells."""
from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LABS_DIR = REPO / "labs"
FIXTURE = REPO / "tests" / "labs" / "fixtures" / "demo_lab.ipynb"
RUN_LABS = REPO / "tools" / "run_labs.py"

CHECK_CALL = re.compile(r"""\bcheck\(\s*["'](\d+\.\d+)["']""")
EXERCISE_DECORATOR = re.compile(r"""^\s*@exercise\(\s*["'](\d+\.\d+)["']""", re.M)
EXERCISE_DEPENDENT = "exercise-dependent"


def lab_notebooks() -> list[Path]:
    """Every lab, then the fixture notebook that proves the machinery even before labs exist."""
    return sorted(LABS_DIR.glob("*.ipynb")) + [FIXTURE]


def notebook_id(path: Path) -> str:
    return path.name if path.parent == LABS_DIR else f"fixture:{path.name}"


def source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))
