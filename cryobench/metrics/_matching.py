"""Find every (reference, candidate) pair within a distance threshold, for all groups at once.

Groups are (experiment, particle type) pairs encoded as integers; a pair only counts inside one
group, and each group has its own radius. The result is exact: the inclusion test is the same
floating-point expression scipy's KD-tree evaluates in the Kaggle script
(``((dx·dx + dy·dy) + dz·dz) <= r·r``), so boundary cases agree bit for bit.

Two implementations:

* :func:`_pairs_grid` (default): a vectorised spatial hash. Each group uses cells of edge
  ``h = 4r``, so the ball of radius ``r`` around a reference touches 1 or 2 cells per axis (3.4
  cells on average; its reach is widened by a relative 1e-7, far above float rounding, so no
  in-range candidate is missed). Candidates get one (group, cell) key each, sorted once (the
  row number rides in the key's low bits, so a plain sort gives the permutation); the
  references' cell keys are joined to them with ``searchsorted`` and every pair found is put to
  the exact test. Cost: one sort of the candidates plus O(pairs), no Python loop over groups.
  Large inputs use two threads (numpy releases the GIL in these steps): the candidates' keys in
  halves, then the sort beside the references' keys, then the join in chunks.
* :func:`_pairs_kdtree`: one scipy KD-tree per group; used when the grid keys would overflow
  (astronomically large coordinates) or a radius is 0, and in tests as a cross-check.
"""

from __future__ import annotations

import numpy as np

from cryobench._threads import num_threads, run_concurrently, submit

__all__ = ["pairs_within"]

_CELL = 4.0  # cell edge in radii: a ball touches 1 or 2 cells per axis, 3.4 cells on average
_MARGIN = 1e-7  # relative widening of the ball's reach, far above float rounding (~1e-16)
_MAX_KEY = 2.0**62
_PARALLEL_MIN = 100_000  # rows (references + candidates) from which two threads pay off


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


def _filter_exact(rc, cc, ri, ci, r2_of_ref):
    """Keep the pairs with ``((dx·dx + dy·dy) + dz·dz) <= r·r`` (scipy's exact test).

    ``rc``, ``cc``: the references' and candidates' coordinate columns; ``r2_of_ref``: the
    squared radius of each reference. In-place steps: a third faster than fresh temporaries.
    """
    d2 = rc[0][ri]
    d2 -= cc[0][ci]
    d2 *= d2
    for d in (1, 2):
        t = rc[d][ri]
        t -= cc[d][ci]
        t *= t
        d2 += t
    keep = np.flatnonzero(d2 <= r2_of_ref[ri])
    return ri[keep], ci[keep], d2[keep]


def _grid_layout(ref_xyz, cand_xyz, group_radius):
    """``(lo, dims, inv_h_group)`` of the cell grids, or None when the keys would overflow."""
    n_groups = len(group_radius)
    if np.any(group_radius <= 0) or not np.all(np.isfinite(group_radius)):
        return None
    inv_h_group = 1.0 / (_CELL * group_radius)
    h_max = _CELL * float(group_radius.max())
    # origin two coarsest cells below the data: u >= 2 on every grid, so u - w > 0
    parts = [ref_xyz]
    if len(cand_xyz) >= _PARALLEL_MIN:
        half = len(cand_xyz) // 2
        parts += [cand_xyz[:half], cand_xyz[half:]]
    else:
        parts.append(cand_xyz)
    bounds = run_concurrently(*[(_bounds, p) for p in parts])
    lo = np.min([b[0] for b in bounds], axis=0) - 2.0 * h_max
    hi = np.max([b[1] for b in bounds], axis=0)
    # cells per axis on the finest grid (room for the upper neighbour of a border cell)
    n_cells = np.floor((hi - lo) * inv_h_group.max()) + 3.0
    if np.any(n_cells > 1e7) or float(np.prod(n_cells)) * n_groups >= _MAX_KEY:
        return None
    return lo, tuple(int(v) for v in n_cells), inv_h_group


def _bounds(xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return xyz.min(axis=0), xyz.max(axis=0)


def _bits(n: int) -> int:
    return max(int(n - 1).bit_length(), 1)


def _cand_keys(out, xyz, groups, lo, dims, inv_h_group, first, shift):
    """Write the candidates' cell keys (``<< shift``, row number in the low bits) into ``out``."""
    inv_h = inv_h_group[groups]
    buf = np.empty(len(xyz))
    out[:] = groups
    for d in range(3):
        np.subtract(xyz[:, d], lo[d], out=buf)
        buf *= inv_h
        out *= dims[d]
        out += buf.astype(np.int64)  # truncation == floor since u > 0
    if shift:
        out <<= shift
        out |= np.arange(first, first + len(xyz), dtype=np.int64)


def _ref_needles(ref_xyz, ref_group, lo, dims, inv_h_group):
    """Sorted keys of every cell a reference's ball touches, and the reference of each."""
    n = len(ref_xyz)
    w = (1.0 / _CELL) * (1.0 + _MARGIN)  # the radius in cells, widened
    inv_h = inv_h_group[ref_group]
    c0 = np.empty((3, n), dtype=np.int64)
    spans = np.empty((3, n), dtype=bool)  # does the ball reach the next cell on this axis?
    u = np.empty(n)
    for d in range(3):
        np.subtract(ref_xyz[:, d], lo[d], out=u)
        u *= inv_h
        c0[d] = u - w
        spans[d] = (u + w).astype(np.int64) > c0[d]
    _, ny, nz = dims
    base = ref_group.astype(np.int64)
    for d in range(3):
        base *= dims[d]
        base += c0[d]
    # with the reference's row in the low bits a plain sort also orders the rows (when the
    # key space leaves room for them; otherwise an argsort)
    shift = _bits(n) if float(np.prod(dims)) * len(inv_h_group) * 2.0**_bits(n) < _MAX_KEY \
        else 0
    parts, part_rows = [], []
    rows = np.arange(n, dtype=np.int64)
    for ox in (0, 1):
        for oy in (0, 1):
            for oz in (0, 1):
                if ox or oy or oz:
                    ok = np.ones(n, dtype=bool)
                    for flag, d in ((ox, 0), (oy, 1), (oz, 2)):
                        if flag:
                            ok &= spans[d]
                    sel = np.flatnonzero(ok)
                else:
                    sel = rows
                keys = base[sel]
                keys += (ox * ny + oy) * nz + oz
                if shift:
                    keys <<= shift
                    keys |= sel
                parts.append(keys)
                part_rows.append(sel)
    keys = np.concatenate(parts)
    if not shift:
        order = np.argsort(keys)
        return keys[order], np.concatenate(part_rows)[order]
    keys.sort()
    ref = keys & ((1 << shift) - 1)
    keys >>= shift
    return keys, ref


def _join(needles, needle_ref, ckeys, corder, rc, cc, r2_of_ref):
    """The pairs of (needle's reference, candidate in the needle's cell) that pass the test."""
    first = np.searchsorted(ckeys, needles, side="left")
    # cells holding candidates: the key found there is the needle's own (the end of the
    # array reads as a miss); only those need the end of their run
    hit = np.flatnonzero(ckeys.take(first, mode="clip") == needles)
    first, needles = first[hit], needles[hit]
    count = np.searchsorted(ckeys, needles, side="right")
    count -= first
    ref = needle_ref[hit]
    total = int(count.sum())
    if total == 0:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty.copy(), np.empty(0, dtype=np.float64)
    ri = np.repeat(ref, count)
    # positions first..first+count-1 of each hit cell in the sorted candidates
    before = np.cumsum(count)
    before -= count
    first -= before
    pos = np.repeat(first, count)
    pos += np.arange(total, dtype=np.int64)
    ci = corder[pos]
    return _filter_exact(rc, cc, ri, ci, r2_of_ref)


def _pairs_grid(ref_xyz, ref_group, cand_xyz, cand_group, group_radius):
    layout = _grid_layout(ref_xyz, cand_xyz, group_radius)
    if layout is None:
        return None
    lo, dims, inv_h_group = layout
    n_groups = len(group_radius)
    m = len(cand_xyz)
    # Candidates: one key each, sorted once. With the row number packed into the low bits a
    # plain sort (much faster than argsort) also gives the permutation.
    shift = _bits(m)
    packed = float(np.prod(dims)) * n_groups * 2.0**shift < _MAX_KEY
    ckeys = np.empty(m, dtype=np.int64)
    threads = min(num_threads(), 2) if m + len(ref_xyz) >= _PARALLEL_MIN else 1
    args = (lo, dims, inv_h_group)
    if threads > 1:  # halves of the candidates' keys side by side, then sort || needles
        half = m // 2
        run_concurrently(
            (_cand_keys, ckeys[:half], cand_xyz[:half], cand_group[:half], *args, 0,
             shift if packed else 0),
            (_cand_keys, ckeys[half:], cand_xyz[half:], cand_group[half:], *args, half,
             shift if packed else 0))
        needles_f = submit(_ref_needles, ref_xyz, ref_group, *args)
    else:
        _cand_keys(ckeys, cand_xyz, cand_group, *args, 0, shift if packed else 0)
    if packed:
        ckeys.sort()
        corder = ckeys & ((1 << shift) - 1)
        ckeys >>= shift
    else:
        corder = np.argsort(ckeys)
        ckeys = ckeys[corder]
    if threads > 1:
        needles, needle_ref = needles_f.result()
    else:
        needles, needle_ref = _ref_needles(ref_xyz, ref_group, *args)
    r2 = group_radius * group_radius
    r2_of_ref = r2[ref_group]
    parts = np.linspace(0, len(needles), num_threads() + 1 if threads > 1 else 2).astype(int)
    rc, cc = _columns(ref_xyz), _columns(cand_xyz)
    results = run_concurrently(*[
        (_join, needles[a:b], needle_ref[a:b], ckeys, corder, rc, cc, r2_of_ref)
        for a, b in zip(parts[:-1], parts[1:], strict=True)])
    if len(results) == 1:
        return results[0]
    return tuple(np.concatenate(col) for col in zip(*results, strict=True))


def _pairs_kdtree(ref_xyz, ref_group, cand_xyz, cand_group, group_radius):
    from scipy.spatial import cKDTree  # imported here: scipy.spatial costs ~0.15 s to import
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
    return _filter_exact(_columns(ref_xyz), _columns(cand_xyz), ri, ci, r2[ref_group])
