#!/usr/bin/env python3
"""Execute the lab notebooks and report how long each one takes.

    python tools/run_labs.py                  # every labs/*.ipynb, solutions mode, outputs written in place
    python tools/run_labs.py 05 08_chips      # only these labs (number, name or path)
    python tools/run_labs.py --cold --dry-run # time them with an empty numba cache, write nothing
    python tools/run_labs.py --stubs --allow-errors --output /tmp/x 08   # the learner's view (unsolved)

Solutions mode (the default) sets AISYS_LAB_SOLUTIONS=1, so every ``@exercise`` stub is replaced by the
library's reference and the lab runs solved: those are the outputs we commit and nbval compares. Widget
state is not stored (a plotly FigureWidget alone would add ~5 MB of JavaScript to the file).

The kernel runs from *this* Python environment (not whatever kernelspec "python3" points at), with
OMP_NUM_THREADS=NUMBA_NUM_THREADS=1 (each lab must run in under 60 s on one core) and PYTHONHASHSEED=0
(so printed sets and dicts keep their order between runs).
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LABS = REPO / "labs"
TIME_BUDGET_S = 60.0  # one lab, one core, cold numba cache
CURRENT_ENV_KERNEL = "aisys-current-env"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def lab_paths(names: list[str] | None = None) -> list[Path]:
    """The notebooks named by number ("8", "08"), stem ("08_chips") or path; all labs when empty."""
    every = sorted(LABS.glob("*.ipynb"))
    if not names:
        return every
    chosen: list[Path] = []
    for name in names:
        path = Path(name)
        if path.suffix == ".ipynb" and path.exists():
            chosen.append(path.resolve())
            continue
        matches = [p for p in every if p.stem == name or p.stem.split("_")[0] == name.zfill(2)]
        if not matches:
            known = ", ".join(p.stem for p in every) or "none yet"
            raise SystemExit(f"run_labs: no lab matches {name!r}; labs: {known}")
        chosen.extend(matches)
    return chosen


def _current_env_kernel_manager_class():
    """A kernel manager class whose kernel is ipykernel from this interpreter (as nbval --nbval-current-env)."""
    import ipykernel.kernelspec
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import default

    class CurrentEnvSpecs(KernelSpecManager):
        def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
            if kernel_name == CURRENT_ENV_KERNEL:
                return KernelSpec(resource_dir=ipykernel.kernelspec.RESOURCES, **ipykernel.kernelspec.get_kernel_dict())
            return super().get_kernel_spec(kernel_name)

    class CurrentEnvKernelManager(AsyncKernelManager):
        @default("kernel_spec_manager")
        def _default_specs(self) -> KernelSpecManager:
            return CurrentEnvSpecs(data_dir=self.data_dir)

    return CurrentEnvKernelManager


def kernel_env(*, solutions: bool, numba_cache_dir: str | None = None) -> dict[str, str]:
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1", PYTHONHASHSEED="0")
    env.pop("VSCODE_PID", None)  # would switch plotly's default renderer
    if solutions:
        env["AISYS_LAB_SOLUTIONS"] = "1"
    else:
        env.pop("AISYS_LAB_SOLUTIONS", None)
    if numba_cache_dir:
        env["NUMBA_CACHE_DIR"] = numba_cache_dir
        env["IPYTHONDIR"] = os.path.join(numba_cache_dir, "ipython")  # notebook-cell numba caches live here
    return env


def execute_notebook(path: Path, *, solutions: bool, allow_errors: bool = False, timeout: int = 600,
                     numba_cache_dir: str | None = None):
    """Run every cell of ``path`` in a fresh kernel (cwd = the notebook's folder); return the notebook."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, kernel_manager_class=_current_env_kernel_manager_class(),
                            kernel_name=CURRENT_ENV_KERNEL, timeout=timeout, allow_errors=allow_errors,
                            store_widget_state=False, record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})
    client.execute(env=kernel_env(solutions=solutions, numba_cache_dir=numba_cache_dir))
    return nb


def _error_summary(nb) -> str:
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"cell {i}: {out.get('ename')}: {out.get('evalue')}"
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("labs", nargs="*", help="lab numbers, names or notebook paths (default: every lab)")
    parser.add_argument("--stubs", action="store_true", help="run unsolved, as a learner sees it")
    parser.add_argument("--allow-errors", action="store_true", help="keep going after a failing cell")
    parser.add_argument("--output", type=Path, help="write executed notebooks to this folder, not in place")
    parser.add_argument("--dry-run", action="store_true", help="execute and time only; write nothing")
    parser.add_argument("--cold", action="store_true", help="use an empty numba cache (the first-run timing)")
    parser.add_argument("--timeout", type=int, default=600, help="seconds per cell (default 600)")
    args = parser.parse_args(argv)
    if args.stubs and not (args.output or args.dry_run):
        parser.error("--stubs output must not overwrite the committed labs: add --output DIR or --dry-run")

    import nbformat

    paths = lab_paths(args.labs)
    if not paths:
        print("run_labs: no notebooks in labs/ yet")
        return 0
    mode = "stubs (unsolved)" if args.stubs else "solutions (AISYS_LAB_SOLUTIONS=1)"
    print(f"executing {len(paths)} notebook(s), {mode}, {'cold' if args.cold else 'warm'} numba cache")
    failures, rows = 0, []
    for path in paths:
        t0 = time.perf_counter()
        status = "ok"
        with tempfile.TemporaryDirectory(prefix="aisys-numba-cache-") as cold_dir:  # a fresh one per lab
            try:
                nb = execute_notebook(path, solutions=not args.stubs, allow_errors=args.allow_errors,
                                      timeout=args.timeout, numba_cache_dir=cold_dir if args.cold else None)
                errors = _error_summary(nb)
                if errors:
                    status = f"errors ({errors})"
            except Exception as exc:  # CellExecutionError carries the cell and traceback
                last_line = _ANSI.sub("", str(exc)).strip().splitlines()[-1][:300]
                nb, status = None, f"FAILED: {type(exc).__name__}: {last_line}"
                failures += 1
        seconds = time.perf_counter() - t0
        if seconds > TIME_BUDGET_S and not args.stubs:
            status += f"  SLOW (> {TIME_BUDGET_S:.0f} s budget)"
        rows.append((path.name, seconds, status))
        print(f"  {path.name:<40} {seconds:7.1f} s  {status}", flush=True)
        if nb is not None and not args.dry_run:
            target = (args.output / path.name) if args.output else path
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, target)
    total = sum(r[1] for r in rows)
    print(f"total {total:.1f} s for {len(rows)} notebook(s); {failures} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
