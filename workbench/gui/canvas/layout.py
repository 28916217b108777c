"""Auto-layout: layers from left to right by data flow.  Pure Python (no Qt), so it is easy to test and reuse.

A node's layer is the length of the longest path that reaches it (so every link points right); within a layer,
nodes sit at the mean height of the nodes feeding them, pushed apart where they would overlap.  Chains come out
straight and branches fan out, which is all a model graph of a few dozen blocks needs (Sugiyama-style crossing
minimisation would be overkill here).
"""

from __future__ import annotations

from typing import Iterable

Size = tuple[float, float]


def flow_order(nodes: list[str], edges: Iterable[tuple[str, str]]) -> list[str]:
    """Topological order, stable with respect to ``nodes``; nodes on a cycle follow in their given order."""
    succ: dict[str, list[str]] = {n: [] for n in nodes}
    indeg = {n: 0 for n in nodes}
    for a, b in edges:
        if a in succ and b in indeg and a != b:
            succ[a].append(b)
            indeg[b] += 1
    rank = {n: i for i, n in enumerate(nodes)}
    ready = sorted((n for n in nodes if indeg[n] == 0), key=rank.__getitem__)
    order: list[str] = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for m in succ[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
                ready.sort(key=rank.__getitem__)
    placed = set(order)
    return order + [n for n in nodes if n not in placed]


Edge = tuple  # (src, dst) or (src, dst, src_port_y, dst_port_y): port heights measured from each node's top


def layered_layout(nodes: list[str], edges: list[Edge], sizes: dict[str, Size],
                   origin: tuple[float, float] = (0.0, 0.0), layer_gap: float = 60.0,
                   row_gap: float = 36.0) -> dict[str, tuple[float, float]]:
    """Top-left positions for ``nodes``; the layout's top-left corner is ``origin``.

    A node sits where its links run straight: at the mean of (source port height - own port height) over its
    inputs.  A link that skips layers gets a zero-height placeholder in every layer it crosses (Sugiyama's
    dummy nodes), so the nodes of those layers make room for it instead of sitting on top of it.
    """
    if not nodes:
        return {}
    full = []
    for e in edges:
        a, b = e[0], e[1]
        if a in sizes and b in sizes:
            ady = e[2] if len(e) > 2 else sizes[a][1] / 2
            bdy = e[3] if len(e) > 3 else sizes[b][1] / 2
            full.append((a, b, float(ady), float(bdy)))
    order = flow_order(nodes, [(a, b) for a, b, _, _ in full])
    index = {n: i for i, n in enumerate(order)}
    # an edge that points backwards in the order closes a cycle: ignore it for layering
    forward = [e for e in full if index[e[0]] < index[e[1]]]
    layer: dict[str, int] = {n: 0 for n in order}
    for n in order:
        for a, b, _, _ in forward:
            if b == n:
                layer[n] = max(layer[n], layer[a] + 1)
    n_layers = max(layer.values()) + 1
    columns: list[list[str]] = [[] for _ in range(n_layers)]
    for n in order:
        columns[layer[n]].append(n)

    height = {n: sizes[n][1] for n in nodes}
    preds: dict[str, list[tuple[str, float, float]]] = {n: [] for n in nodes}
    rank = dict(index)
    for i, (a, b, ady, bdy) in enumerate(forward):
        prev, prev_dy = a, ady
        for li in range(layer[a] + 1, layer[b]):
            dummy = f"\0{i}:{li}"  # cannot clash with a node id
            height[dummy] = 0.0
            preds[dummy] = [(prev, prev_dy, 0.0)]
            rank[dummy] = len(rank)
            columns[li].append(dummy)
            prev, prev_dy = dummy, 0.0
        preds[b].append((prev, prev_dy, bdy))

    x_of: list[float] = []
    x = 0.0
    for col in columns:
        x_of.append(x)
        x += max((sizes[n][0] for n in col if n in sizes), default=0.0) + layer_gap

    top: dict[str, float] = {}
    for li, col in enumerate(columns):
        desired: dict[str, float] = {}
        y = 0.0
        for n in col:
            if preds[n]:
                desired[n] = sum(top[u] + udy - vdy for u, udy, vdy in preds[n]) / len(preds[n])
            else:
                desired[n] = y  # sources (normally only in the first layer) are stacked
                y += height[n] + row_gap
        col.sort(key=lambda n: (desired[n] + height[n] / 2, rank[n]))
        bottom, prev_real, pushed = None, True, 0.0
        for n in col:
            real = n in sizes
            t = desired[n]
            if bottom is not None:
                gap = row_gap if (real and prev_real) else row_gap / 2
                t = max(t, bottom + gap)
            pushed += t - desired[n]
            top[n] = t
            bottom, prev_real = t + height[n], real
        # pushing apart only moves things down; recentre the column on what its inputs wanted
        shift = pushed / len(col)
        for n in col:
            top[n] -= shift

    min_y = min(top[n] for n in nodes)
    return {n: (origin[0] + x_of[layer[n]], origin[1] + top[n] - min_y) for n in nodes}
