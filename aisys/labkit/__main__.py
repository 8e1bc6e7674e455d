"""``python -m aisys.labkit list`` (every exercise) and ``python -m aisys.labkit check [ID ...]``.

``check`` is the lab author's self-test (aisys.labkit.audit): the library's reference must PASS, every
registered plausible mistake must FAIL saying its words (at least five per exercise), and the check must
try every optional argument; the exit status is non-zero otherwise.
"""
from __future__ import annotations

import argparse
import sys

from .registry import describe, list_exercises
from .runner import run_check


def _table(rows: list[tuple[str, ...]], header: tuple[str, ...]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*r) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def cmd_list(args: argparse.Namespace) -> int:
    exercises = list_exercises(args.lab)
    if not exercises:
        print("no exercises registered" + (f" for lab {args.lab!r}" if args.lab else ""))
        return 0
    rows = [(ex.id, ex.title, ex.lab, describe(ex.reference)) for ex in exercises]
    print(_table(rows, ("id", "title", "lab", "reference")))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from .audit import audit
    from .registry import get_exercise

    exercises = [get_exercise(i) for i in args.ids] if args.ids else list_exercises(args.lab)
    problems = 0
    for ex in exercises:
        found = audit(ex)
        problems += len(found)
        print(f"{ex.id:>6}  {len(ex.bad)} mistakes  " + ("ok" if not found else f"{len(found)} problem(s)"))
        for p in found:
            print("        - " + p.replace("\n", "\n          "))
    print(f"{len(exercises)} exercises, {problems} problems")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aisys.labkit", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_list = sub.add_parser("list", help="table of every exercise: id, title, lab, reference")
    p_list.add_argument("--lab", help="only this lab, e.g. 08_chips")
    p_list.set_defaults(run=cmd_list)
    p_check = sub.add_parser("check", help="self-test: reference passes, mistakes fail with their words, arguments covered")
    p_check.add_argument("ids", nargs="*", help="exercise ids such as 8.2 (default: all)")
    p_check.add_argument("--lab", help="only this lab's exercises")
    p_check.set_defaults(run=cmd_check)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
