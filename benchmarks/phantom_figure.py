"""Draw a slice of a first- and a second-generation CZII-like phantom side by side.

Usage: python benchmarks/phantom_figure.py [--seed 0] [-o docs/img/phantom-v1-v2.png]

Top row: the xy slice through the middle of the ice of ``czii`` (first generation, one
Fourier filter), ``czii-v2`` denoised and ``czii-v2`` wbp (tilt series + weighted
back-projection); bottom row: the xz slice through the middle of y, where the missing wedge and
the back-projection streaks show. 1-99 % contrast stretch per panel, no picks drawn.
"""

from __future__ import annotations

import argparse

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("-o", "--out", default="docs/img/phantom-v1-v2.png")
    args = ap.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cryobench.data.phantom import PRESETS, generate_tomogram
    from cryobench.io.atomic import atomic_path

    v1 = generate_tomogram(PRESETS["czii"], args.seed)
    v2 = generate_tomogram(PRESETS["czii-v2"], args.seed)
    panels = [("czii (first generation)", v1.volume, v1.meta["ice_z"]),
              ("czii-v2 denoised", v2.tomograms["denoised"], v2.meta["ice_z"]),
              ("czii-v2 wbp", v2.tomograms["wbp"], v2.meta["ice_z"])]
    fig, axes = plt.subplots(2, 3, figsize=(18, 8.4), gridspec_kw={"height_ratios": [630, 184]})
    for col, (title, vol, (z0, z1)) in enumerate(panels):
        z = (z0 + z1) // 2
        for row, img in enumerate((vol[z], vol[:, vol.shape[1] // 2])):
            lo, hi = np.percentile(img, [1, 99])
            ax = axes[row, col]
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"{title}, xy slice z={z}" if row == 0 else "xz slice (z down)",
                         fontsize=11)
    fig.subplots_adjust(left=0.01, right=0.99, top=0.96, bottom=0.01, wspace=0.03, hspace=0.08)
    with atomic_path(args.out) as tmp:
        fig.savefig(tmp, dpi=60)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
