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


GENERATORS = REPO / "tools" / "make_labs"


def generator_path(path: Path) -> Path:
    """tools/make_labs/labNN.py for labs/NN_topic.ipynb."""
    return GENERATORS / f"lab{path.stem.split('_')[0]}.py"


def generator_module(path: Path):
    """The imported generator of a lab (its CELLS, build(), and optional QUOTED table)."""
    import importlib.util
    import sys

    gen = generator_path(path)
    if str(GENERATORS) not in sys.path:
        sys.path.insert(0, str(GENERATORS))          # generators import their sibling labcells.py
    spec = importlib.util.spec_from_file_location(f"_lab_generator_{gen.stem}", gen)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def output_texts(cell) -> list[str]:
    """The text a code cell printed or displayed (stream text and text/* mime data)."""
    texts = []
    for out in cell.get("outputs", []):
        if "text" in out:
            texts.append(out["text"] if isinstance(out["text"], str) else "".join(out["text"]))
        for mime, value in out.get("data", {}).items():
            if mime.startswith("text/"):
                texts.append(value if isinstance(value, str) else "".join(value))
    return texts


WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


def shows_widget(cell) -> bool:
    return any(WIDGET_MIME in out.get("data", {}) for out in cell.get("outputs", []))
