"""The one depth-first walk behind every "inputs before users" order in the framework: autograd's
reverse sweep, the explicit tape read off a tensor, and scalar expressions. Iterative, so a graph a
hundred thousand ops deep does not hit Python's recursion limit."""
from __future__ import annotations

from typing import Callable, Iterable


def postorder(roots: Iterable, children: Callable) -> list:
    """Every node reachable from ``roots`` once (by identity), each after the nodes it reads. ``children(n)``
    lists what ``n`` reads; they are explored last-first (the order a stack pops them)."""
    order, seen = [], set()
    for root in roots:
        stack = [(root, False)]
        while stack:
            n, done = stack.pop()
            if done:
                order.append(n)
                continue
            if id(n) in seen:
                continue
            seen.add(id(n))
            stack.append((n, True))
            for c in children(n):
                if id(c) not in seen:
                    stack.append((c, False))
    return order
