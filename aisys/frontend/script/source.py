"""Stages 0–2 of scripting: the function's source, its tokens (词法分析) and its syntax tree (语法分析),
and the error every stage raises (:class:`ScriptError`, naming the user's file:line)."""
from __future__ import annotations

import ast
import inspect
import io
import textwrap
import tokenize as _tokenize
from dataclasses import dataclass
from typing import Any, Callable


# ---- errors --------------------------------------------------------------------------------------------
class ScriptError(ValueError):
    """The compiler rejected the program. ``kind`` is "unknown name", "unsupported", "shape", "type"
    or "control flow"; ``where`` is the user's ``file:line``; the message quotes the line."""

    def __init__(self, kind: str, message: str, where: str, line_text: str = "", hint: str = ""):
        self.kind, self.where, self.hint = kind, where, hint
        self.lineno = int(where.rsplit(":", 1)[-1]) if where.rsplit(":", 1)[-1].isdigit() else 0
        text = f"{where}: {kind}: {message}"
        if line_text:
            text += f"\n    {line_text.strip()}"
        if hint:
            text += f"\n  hint: {hint}"
        super().__init__(text)


# ---- stage 0: the source ---------------------------------------------------------------------------------
@dataclass
class Source:
    """A function's source with its place in the file, so every stage can report file:line."""
    fn: Callable           # the plain function
    text: str              # dedented source of the def
    filename: str
    first_line: int        # file line number of the first line of ``text``
    owner: Any = None      # for a bound method: the object its first parameter (self) is bound to
    callable: Any = None   # what the user passed (a bound method keeps its owner for parameter names)

    def where(self, lineno: int) -> str:
        return f"{self.filename}:{lineno}"

    def line(self, lineno: int) -> str:
        lines = self.text.splitlines()
        k = lineno - self.first_line
        return lines[k] if 0 <= k < len(lines) else ""


class Scripted:
    """What a compiled function is to the compiler's stages: a wrapper whose ``fn`` is the Python function
    (``ScriptFunction`` derives from it; the stages read the wrapped source, or inline its graph)."""
    fn: Callable
    name: str


def _display_filename(fn: str) -> str:
    return "<cell>" if "ipykernel_" in fn else fn


def get_source(fn) -> Source:
    if isinstance(fn, Scripted):
        fn = fn.fn
    original, owner = fn, getattr(fn, "__self__", None)
    fn = getattr(fn, "__func__", fn)
    if not inspect.isfunction(fn):
        raise TypeError(f"aisys.script compiles Python functions (def ...), got {type(fn).__name__}; "
                        f"for a module, script its forward method: aisys.script(model.forward)")
    if fn.__name__ == "<lambda>":
        raise TypeError("aisys.script cannot compile a lambda: its source is part of a larger line; "
                        "define the function with def")
    try:
        lines, start = inspect.getsourcelines(fn)
    except (OSError, TypeError) as e:
        raise TypeError(f"aisys.script needs the source of {fn.__name__!r} but Python cannot find it ({e}); "
                        f"define the function in a file or a notebook cell") from None
    return Source(fn, textwrap.dedent("".join(lines)), _display_filename(fn.__code__.co_filename), start,
                  owner, original)


# ---- stage 1: tokens -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Token:
    """One lexical unit: its kind (NAME, OP, NUMBER, NEWLINE, INDENT, ...), text and file position."""
    kind: str
    text: str
    line: int
    col: int

    def __str__(self) -> str:
        return f"{self.line}:{self.col} {self.kind} {self.text!r}"


def tokens(fn) -> list[Token]:
    """Lexical analysis (词法分析): the function's source as tokens, comments and blank lines dropped."""
    src = get_source(fn)
    out = []
    for tok in _tokenize.generate_tokens(io.StringIO(src.text).readline):
        kind = _tokenize.tok_name[tok.type]
        if kind in ("COMMENT", "NL", "ENDMARKER", "ENCODING"):
            continue
        out.append(Token(kind, tok.string, tok.start[0] + src.first_line - 1, tok.start[1]))
    return out


def format_tokens(toks: list[Token], limit: int = 40) -> str:
    lines = [f"{'line:col':>9}  {'kind':<8} text"]
    for t in toks[:limit]:
        lines.append(f"{t.line:>5}:{t.col:<3}  {t.kind:<8} {t.text!r}")
    if len(toks) > limit:
        lines.append(f"… {len(toks) - limit} more tokens")
    return "\n".join(lines)


# ---- stage 2: syntax tree ----------------------------------------------------------------------------------
def parse(fn) -> ast.FunctionDef:
    """Syntax analysis (语法分析): the ``ast.FunctionDef`` of ``fn``, with file line numbers."""
    src = get_source(fn)
    return _parse_source(src)


def _parse_source(src: Source) -> ast.FunctionDef:
    tree = ast.parse(src.text)
    ast.increment_lineno(tree, src.first_line - 1)
    node = tree.body[0]
    if not isinstance(node, ast.FunctionDef):
        raise ScriptError("unsupported", f"expected a def, got {type(node).__name__}", src.where(src.first_line))
    return node


def dump(fn, *, indent: int = 1) -> str:
    """The syntax tree as text (``ast.dump``), decorators left out."""
    node = parse(fn)
    node.decorator_list = []
    return ast.dump(node, indent=indent)
