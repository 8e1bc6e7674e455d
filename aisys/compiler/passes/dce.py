"""Dead-code elimination (死代码消除, 03Frontend/09DCE).

A node is live if a graph output depends on it; everything else is removed. Graph inputs stay even
when unused: they are the function's signature.
"""
from __future__ import annotations

from ..rewriter import Rewriter


def dce(rw: Rewriter) -> None:
    """Remove every node no output depends on (one rewrite per dead subgraph root). O(n + edges)."""
    g = rw.graph
    live = g.live_ids()
    dead = [i for i in g.nodes if i not in live and i not in g.inputs]
    if not dead:
        return
    users = rw.users()
    dead_set = set(dead)
    # a root is a dead node no dead node reads: removing it with its dead producers is one rewrite
    roots = [i for i in dead if not any(u in dead_set for u in users[i])]
    done: set[int] = set()
    for r in roots:
        group, in_group, stack = [], set(), [r]
        while stack:
            i = stack.pop()
            if i in done or i not in dead_set:
                continue
            if any(u in dead_set and u not in done and u not in in_group for u in users[i]):
                continue                   # another dead root still reads it; removed with that root
            done.add(i)
            group.append(i)
            in_group.add(i)
            stack.extend(g.nodes[i].inputs)
        if group:
            rw.remove(group, rule="dce", note=f"dead: %{r} = {g.nodes[r].op} reaches no output")
    left = [i for i in dead if i not in done]
    if left:
        rw.remove(left, rule="dce", note="dead: shared producers of removed nodes")
