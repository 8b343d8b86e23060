"""Find every (reference, candidate) pair within a distance threshold, for all groups at once.

Groups are (experiment, particle type) pairs encoded as integers; a pair only counts inside one
group, and each group has its own radius. The result is exact: the inclusion test is the same
floating-point expression scipy's KD-tree evaluates in the Kaggle script
(``((dx·dx + dy·dy) + dz·dz) <= r·r``), so boundary cases agree bit for bit.

Two implementations:

* :func:`_pairs_grid` (default): a vectorised spatial hash. Each group uses cells of edge
  ``h = 2r(1 + 1e-7)``; a ball of radius ``r`` then touches at most 2 cells per axis, so every
  reference looks into the 8 cells on its side of its own cell. Candidates are sorted by cell key
  once and joined to the references' 8 keys with ``searchsorted``. Cost: one sort of the
  candidates plus O(pairs), with no Python loop over groups.
* :func:`_pairs_kdtree`: one scipy KD-tree per group; used when the grid keys would overflow
  (astronomically large coordinates) or a radius is 0, and in tests as a cross-check.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

__all__ = ["pairs_within", "exact_d2"]

_MARGIN = 1e-7  # relative widening of the grid cells, far above float rounding (~1e-16)
_MAX_KEY = 2.0**62


def exact_d2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared distances of matching rows, summed in scipy's order: ``(dx² + dy²) + dz²``."""
    d = a - b
    return (d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1]) + d[:, 2] * d[:, 2]


def _columns(xyz: np.ndarray) -> list[np.ndarray]:
    """The three coordinate columns as contiguous 1D arrays (views when already F-ordered)."""
    return [np.ascontiguousarray(xyz[:, d]) for d in range(3)]


def pairs_within(
    ref_xyz: np.ndarray,
    ref_group: np.ndarray,
    cand_xyz: np.ndarray,
    cand_group: np.ndarray,
    group_radius: np.ndarray,
    method: str = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs ``(i, j)`` with ``ref_group[i] == cand_group[j] = g`` and distance ≤ radius[g].

    Args:
        ref_xyz, cand_xyz: ``(n, 3)`` / ``(m, 3)`` float64 coordinates.
        ref_group, cand_group: integer group ids in ``[0, len(group_radius))``.
        group_radius: radius per group (≥ 0).
        method: ``"auto"`` (grid, KD-tree fallback), ``"grid"`` or ``"kdtree"``.

    Returns:
        ``(ref_idx, cand_idx, d2)`` int64, int64, float64 arrays, in no particular order.
    """
    ref_xyz = np.asarray(ref_xyz, dtype=np.float64)
    cand_xyz = np.asarray(cand_xyz, dtype=np.float64)
    ref_group = np.asarray(ref_group, dtype=np.int64)
    cand_group = np.asarray(cand_group, dtype=np.int64)
    group_radius = np.asarray(group_radius, dtype=np.float64)
    if len(ref_xyz) == 0 or len(cand_xyz) == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty.copy(), np.empty(0, dtype=np.float64)
    if method not in ("auto", "grid", "kdtree"):
        raise ValueError(f"unknown pair-finding method {method!r}")
    if method != "kdtree":
        out = _pairs_grid(ref_xyz, ref_group, cand_xyz, cand_group, group_radius)
        if out is not None:
            return out
        if method == "grid":
            raise ValueError("grid pair finding is not possible for these inputs")
    return _pairs_kdtree(ref_xyz, ref_group, cand_xyz, cand_group, group_radius)


def _filter_exact(ref_xyz, cand_xyz, ri, ci, r2_of_ref):
    """Keep the pairs with ``((dx·dx + dy·dy) + dz·dz) <= r·r`` (scipy's exact test)."""
    rc, cc = _columns(ref_xyz), _columns(cand_xyz)
    d = rc[0][ri] - cc[0][ci]
    d2 = d * d
    d = rc[1][ri] - cc[1][ci]
    d2 += d * d
    d = rc[2][ri] - cc[2][ci]
    d2 += d * d
    keep = d2 <= r2_of_ref[ri]
    return ri[keep], ci[keep], d2[keep]


def _pairs_grid(ref_xyz, ref_group, cand_xyz, cand_group, group_radius):
    n_groups = len(group_radius)
    if np.any(group_radius <= 0) or not np.all(np.isfinite(group_radius)):
        return None
    h_group = 2.0 * group_radius * (1.0 + _MARGIN)
    inv_h_group = 1.0 / h_group
    # origin two coarsest cells below the data: u >= ~2 on every grid, so cell - 1 >= 0
    lo = np.minimum(ref_xyz.min(axis=0), cand_xyz.min(axis=0)) - 2.0 * h_group.max()
    hi = np.maximum(ref_xyz.max(axis=0), cand_xyz.max(axis=0))
    span = hi - lo
    # cells per axis (room for the neighbour of a border cell), for the finest grid
    n_cells = np.floor(span * inv_h_group.max()) + 3.0
    if np.any(n_cells > 1e7) or float(np.prod(n_cells)) * n_groups >= _MAX_KEY:
        return None
    nx, ny, nz = (int(v) for v in n_cells)
    # 32-bit keys sort and search faster; use them when the key space allows
    key_dtype = np.int32 if float(np.prod(n_cells)) * n_groups < 2.0**31 else np.int64
    ref_group = ref_group.astype(key_dtype)
    cand_group = cand_group.astype(key_dtype)

    def key(g, cx, cy, cz):
        k = g * nx
        k += cx
        k *= ny
        k += cy
        k *= nz
        k += cz
        return k

    def cells(xyz, groups):
        """``(3, n)`` fractional cell coordinates u and integer cells."""
        inv_h = inv_h_group[groups]
        u = np.empty((3, len(xyz)), dtype=np.float64)
        for d in range(3):
            np.subtract(xyz[:, d], lo[d], out=u[d])
            u[d] *= inv_h
        return u, u.astype(key_dtype)  # truncation == floor since u > 0

    # candidates: one key each, sorted once
    _, cc = cells(cand_xyz, cand_group)
    ckey = key(cand_group, cc[0], cc[1], cc[2])
    del cc
    order = np.argsort(ckey)
    skey = ckey[order]
    del ckey
    starts = np.flatnonzero(np.concatenate(([True], skey[1:] != skey[:-1])))
    ukeys = skey[starts]
    counts = np.diff(np.append(starts, len(skey)))
    del skey

    # references: the 8 cells on the side of their own cell that the ball can reach
    ur, rc = cells(ref_xyz, ref_group)
    side = np.where(ur - rc >= 0.5, 1, -1).astype(key_dtype)  # (3, n)
    n_ref = len(ref_xyz)
    rkeys = np.empty((n_ref, 8), dtype=key_dtype)
    k = 0
    for ox in (0, 1):
        for oy in (0, 1):
            for oz in (0, 1):
                rkeys[:, k] = key(ref_group, rc[0] + ox * side[0], rc[1] + oy * side[1],
                                  rc[2] + oz * side[2])
                k += 1
    rkeys = rkeys.ravel()
    rorder = np.argsort(rkeys)  # sorted needles: searchsorted walks memory in order
    rkeys = rkeys[rorder]
    pos = np.searchsorted(ukeys, rkeys)
    pos_c = np.minimum(pos, len(ukeys) - 1)
    hit = ukeys[pos_c] == rkeys
    ref_of_hit = rorder[hit] // 8
    cell_of_hit = pos_c[hit]
    n_per_hit = counts[cell_of_hit]
    total = int(n_per_hit.sum())
    if total == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty.copy(), np.empty(0, dtype=np.float64)
    ri = np.repeat(ref_of_hit, n_per_hit)
    # offsets 0..n-1 inside each hit cell
    first = np.repeat(starts[cell_of_hit] - np.concatenate(([0], np.cumsum(n_per_hit)[:-1])),
                      n_per_hit)
    ci = order[first + np.arange(total)]
    r2 = group_radius * group_radius
    return _filter_exact(ref_xyz, cand_xyz, ri, ci, r2[ref_group])


def _pairs_kdtree(ref_xyz, ref_group, cand_xyz, cand_group, group_radius):
    r_order = np.argsort(ref_group, kind="stable")
    c_order = np.argsort(cand_group, kind="stable")
    groups = np.arange(len(group_radius))
    r_bounds = np.searchsorted(ref_group[r_order], np.append(groups, len(groups)))
    c_bounds = np.searchsorted(cand_group[c_order], np.append(groups, len(groups)))
    out_r, out_c = [], []
    for g in groups:
        rs = r_order[r_bounds[g]:r_bounds[g + 1]]
        cs = c_order[c_bounds[g]:c_bounds[g + 1]]
        if len(rs) == 0 or len(cs) == 0:
            continue
        radius = float(group_radius[g])
        # a widened search, then the exact test below decides
        search = radius * (1.0 + 1e-9) + 1e-12
        m = cKDTree(ref_xyz[rs]).sparse_distance_matrix(
            cKDTree(cand_xyz[cs]), search, output_type="ndarray")
        out_r.append(rs[m["i"]])
        out_c.append(cs[m["j"]])
    if not out_r:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty.copy(), np.empty(0, dtype=np.float64)
    ri = np.concatenate(out_r).astype(np.int64)
    ci = np.concatenate(out_c).astype(np.int64)
    r2 = group_radius * group_radius
    return _filter_exact(ref_xyz, cand_xyz, ri, ci, r2[ref_group])
