"""Stage 3a of scripting (语义分析): what every name in the function means — a parameter, a local, a
global tensor, a module, a function, a builtin — and which constructs the compiler supports."""
from __future__ import annotations

import ast
import builtins
import difflib
import inspect
from dataclasses import dataclass
from typing import Any

from ...framework.tensor import Tensor
from .source import ScriptError, Scripted, Source, _parse_source, get_source


# ---- stage 3a: names and supported constructs --------------------------------------------------------------
_ALLOWED = (ast.FunctionDef, ast.arguments, ast.arg, ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return,
            ast.If, ast.While, ast.For, ast.Expr, ast.Pass, ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp,
            ast.IfExp, ast.Call, ast.keyword, ast.Attribute, ast.Subscript, ast.Slice, ast.Name, ast.Constant,
            ast.Tuple, ast.List, ast.Load, ast.Store, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)

_HINTS = {
    "ListComp": "write a `for i in range(n):` loop (it is unrolled at compile time)",
    "GeneratorExp": "write a `for i in range(n):` loop (it is unrolled at compile time)",
    "DictComp": "build the values with a loop and keep them in separate variables",
    "Lambda": "define the helper with def at module level; calls to it are compiled inline",
    "FunctionDef": "define helper functions at module level; calls to them are compiled inline",
    "With": "move the `with` block (e.g. aisys.no_grad()) outside the scripted function",
    "Try": "a graph has no exceptions; check shapes before calling instead",
    "Raise": "a graph has no exceptions; check shapes before calling instead",
    "Break": "put the stop condition into the while condition",
    "Continue": "wrap the rest of the loop body in an if",
    "Global": "pass the value in as an argument",
    "Nonlocal": "pass the value in as an argument",
    "Delete": "just stop using the variable",
    "Import": "import at module level",
    "ImportFrom": "import at module level",
    "Dict": "use separate variables or a tuple",
    "Set": "use a tuple",
    "JoinedStr": "strings are not graph values; leave formatting outside the scripted function",
    "Starred": "pass the arguments one by one",
    "NamedExpr": "assign in a separate statement",
    "Assert": "check shapes before calling the scripted function",
    "Yield": "return the values instead",
}


@dataclass
class NameInfo:
    name: str
    kind: str            # parameter | local | global tensor | module | function | global value | builtin
    detail: str
    line: int


def _stored_names(body) -> list[str]:
    """Every name assigned anywhere in ``body`` (Python's rule: such a name is local to the function)."""
    out: list[str] = []
    for stmt in body:
        for n in ast.walk(stmt):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store) and n.id not in out:
                out.append(n.id)
    return out


def _outer_scope(fn) -> dict[str, Any]:
    """What a free name of ``fn`` can mean: closure cells first, then globals, then builtins."""
    scope = dict(vars(builtins))
    scope.update(getattr(fn, "__globals__", {}))
    code = getattr(fn, "__code__", None)
    if code is not None and fn.__closure__:
        for name, cell in zip(code.co_freevars, fn.__closure__):
            try:
                scope[name] = cell.cell_contents
            except ValueError:
                pass
    return scope


def _describe_value(v) -> tuple[str, str]:
    if isinstance(v, Tensor):
        return "global tensor", f"{v.dtype.short}{list(v.shape)}"
    if inspect.ismodule(v):
        return "module", v.__name__
    if callable(getattr(v, "named_parameters", None)):
        return "global value", f"{type(v).__name__} (a model)"
    if isinstance(v, Scripted):
        return "function", f"scripted {v.name}"
    if callable(v):
        return "function", f"{getattr(v, '__module__', '') or ''}.{getattr(v, '__qualname__', '')}".lstrip(".")
    return "global value", f"{type(v).__name__} {v!r}"[:60]


def _resolve(src: Source, node: ast.FunctionDef) -> dict[str, NameInfo]:
    a = node.args
    if a.vararg or a.kwarg or a.kwonlyargs:
        raise ScriptError("unsupported", "*args, **kwargs and keyword-only parameters are not supported",
                          src.where(node.lineno), src.line(node.lineno), "list the parameters one by one")
    params = [p.arg for p in a.posonlyargs + a.args]
    local_names = _stored_names(node.body)
    table: dict[str, NameInfo] = {}
    for p in params:
        table[p] = NameInfo(p, "parameter", "", node.lineno)
    scope = _outer_scope(src.fn)
    for stmt in node.body:
        for n in ast.walk(stmt):
            if not isinstance(n, _ALLOWED):
                kind = type(n).__name__
                line = getattr(n, "lineno", stmt.lineno)
                raise ScriptError("unsupported", f"the {kind} construct cannot be compiled to a graph",
                                  src.where(line), src.line(line), _HINTS.get(kind, "rewrite it with if/while/for "
                                                                                       "and plain assignments"))
            if isinstance(n, ast.Name):
                if n.id in table:
                    continue
                if n.id in local_names:
                    table[n.id] = NameInfo(n.id, "local", "", n.lineno)
                elif n.id in scope:
                    kind, detail = _describe_value(scope[n.id])
                    if n.id in vars(builtins) and scope[n.id] is vars(builtins)[n.id]:
                        kind = "builtin"
                    table[n.id] = NameInfo(n.id, kind, detail, n.lineno)
                else:
                    close = difflib.get_close_matches(n.id, list(table) + local_names + list(scope), n=1)
                    raise ScriptError("unknown name", f"name {n.id!r} is not defined", src.where(n.lineno),
                                      src.line(n.lineno), f"did you mean {close[0]!r}?" if close else
                                      "define it before the function or pass it in as a parameter")
    return table


def resolve(fn) -> dict[str, NameInfo]:
    """Semantic pass, part 1: what every name means, and a check that every construct is supported."""
    src = get_source(fn)
    return _resolve(src, _parse_source(src))
