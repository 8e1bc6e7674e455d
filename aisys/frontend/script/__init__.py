"""Graph capture by compiling Python source: tokens → syntax tree → semantic checks → graph.

One module per stage: ``source`` (stages 0–2 and ScriptError), ``names`` (3a), ``specs`` (input specs, type
records), ``lowering`` (3b), ``function`` (:func:`script`, :class:`ScriptFunction`).

This is the "source-parsing" conversion of ZOMI's lecture 03DataFlow/06StaticGraph (TorchScript's
``torch.jit.script``, MindSpore's graph mode), in the lecture's three stages, each one exposed so a
learner can look at it:

1. **Lexing** (词法分析): :func:`tokens` — the function's source through Python's ``tokenize``.
2. **Parsing** (语法分析): :func:`parse` / :func:`dump` — the ``ast`` syntax tree.
3. **Semantic analysis and lowering** (语义分析, 类型推导): :func:`resolve` finds what every name
   means (parameter, local, global tensor, module, function, builtin) and rejects constructs the
   compiler does not support; :func:`lower` walks the tree with input *specs* (shape and dtype),
   inferring every value's type through the op registry and emitting graph nodes. Errors name the
   user's ``file:line``. :func:`check` returns both analyses as a :class:`SemanticReport`.

How lowering works: Python-valued code (numbers, shapes, ``for i in range(3)``) is evaluated at
compile time — that is constant folding and loop unrolling. Tensor expressions run on *placeholder*
tensors (zeros of the right spec) under a tracer that records their ops, so every library function
is reused as is. What a tracer cannot see — an ``if`` or ``while`` whose condition is a tensor —
the compiler sees in the syntax tree, and lowers to ``cond`` / ``while_loop`` ops with subgraphs.
"""
from .function import ScriptFunction, script
from .lowering import check, lower
from .names import NameInfo, resolve
from .source import ScriptError, Source, Token, dump, format_tokens, get_source, parse, tokens
from .specs import SemanticReport, TypeRecord, parse_spec

__all__ = ["script", "ScriptFunction", "ScriptError", "SemanticReport", "Token", "tokens", "parse", "dump",
           "resolve", "check", "lower", "parse_spec"]
