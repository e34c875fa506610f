"""Do colors stop at object edges? Guided versus bilinear chroma upsampling on high-res photos.

The ground-truth chroma of each photo is reduced to the network's output resolution (128 px on
the long side, as for a 256 px working size) and brought back to full size with plain bilinear
interpolation and with the L-guided filter the colorizer uses. The ab error is reported over all
pixels and over the pixels on strong lightness edges (top 5% of the Sobel magnitude of L*), where
bleeding shows. Also writes a side-by-side crop to ``--png``.

    python benchmarks/edge_check.py [--png edge_check.png]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--png", default=None)
    ap.add_argument("--low", type=int, default=128)
    args = ap.parse_args()
    from skimage import data
    from skimage.color import lab2rgb, rgb2lab
    from skimage.filters import sobel

    from napari_colorize.core.inference import guided_upsample

    print("| photo | ab RMSE bilinear | ab RMSE guided | on edges: bilinear | on edges: guided |")
    print("|---|---|---|---|---|")
    crops = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "retina"):
        rgb = getattr(data, name)().astype(np.float32) / 255.0
        lab = torch.from_numpy(rgb2lab(rgb).astype(np.float32)).permute(2, 0, 1)[None]
        h, w = lab.shape[-2:]
        s = args.low / max(h, w)
        low = (max(1, round(h * s)), max(1, round(w * s)))
        l_full, ab_full = lab[:, :1], lab[:, 1:]
        ab_low = F.interpolate(ab_full, size=low, mode="area")
        l_low = F.interpolate(l_full, size=low, mode="area")
        plain = F.interpolate(ab_low, size=(h, w), mode="bilinear", align_corners=False)
        guided = guided_upsample(ab_low, l_low, l_full)
        edges = sobel(l_full[0, 0].numpy())
        mask = torch.from_numpy(edges >= np.quantile(edges, 0.95))

        def rmse(x, m=None, ab_full=ab_full):
            d2 = ((x - ab_full) ** 2).sum(1)[0]
            return float(d2[m].mean().sqrt()) if m is not None else float(d2.mean().sqrt())

        print(f"| {name} {w}x{h} | {rmse(plain):.2f} | {rmse(guided):.2f} | {rmse(plain, mask):.2f} | "
              f"{rmse(guided, mask):.2f} |")
        if name == "astronaut" and args.png:
            win = (slice(60, 220), slice(180, 340))  # the hair and face edge
            crops = [lab2rgb(torch.cat([l_full, ab], 1)[0].permute(1, 2, 0).numpy())[win] for ab in (plain, guided)]
            crops.append(rgb[win])
    if args.png and crops:
        from PIL import Image

        strip = np.concatenate([np.pad(c, ((4, 4), (4, 4), (0, 0)), constant_values=1) for c in crops], 1)
        Image.fromarray((np.clip(strip, 0, 1) * 255).astype(np.uint8)).resize(
            (strip.shape[1] * 2, strip.shape[0] * 2), Image.NEAREST).save(args.png)
        print(f"\nwrote {args.png}: bilinear | guided | original (astronaut crop, chroma from {args.low} px)")


if __name__ == "__main__":
    main()
