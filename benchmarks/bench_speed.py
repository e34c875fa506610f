"""Colorize time on CPU for square inputs, beside the ECCV16 network of Zhang et al. 2016.

ECCV16 is built here with random weights (about 32 M parameters; weights do not change its speed)
and timed in its published pipeline: the input resized to 256 x 256, ab predicted at 64 x 64 and
upsampled bilinearly. Both run in the same process on the same inputs. Prints a Markdown table.

    python benchmarks/bench_speed.py [--threads 2] [--sizes 256 512 1024 2048] [--repeat 5]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def eccv16() -> nn.Module:
    """The ECCV16 colorization network (Zhang et al. 2016), layer for layer, random weights."""

    def block(cin, cout, n, stride_last=1, dilation=1, bn=True):
        layers = []
        for i in range(n):
            s = stride_last if i == n - 1 else 1
            layers += [nn.Conv2d(cin if i == 0 else cout, cout, 3, stride=s, padding=dilation,
                                 dilation=dilation), nn.ReLU(True)]
        if bn:
            layers.append(nn.BatchNorm2d(cout))
        return layers

    layers = (
        block(1, 64, 2, 2) + block(64, 128, 2, 2) + block(128, 256, 3, 2) + block(256, 512, 3)
        + block(512, 512, 3, dilation=2) + block(512, 512, 3, dilation=2) + block(512, 512, 3)
        + [nn.ConvTranspose2d(512, 256, 4, stride=2, padding=1), nn.ReLU(True)]
        + block(256, 256, 2, bn=False) + [nn.Conv2d(256, 313, 1), nn.Softmax(dim=1),
                                          nn.Conv2d(313, 2, 1, bias=False)]
    )
    return nn.Sequential(*layers).eval()


@torch.inference_mode()
def eccv16_pipeline(net: nn.Module, gray: np.ndarray) -> np.ndarray:
    """ECCV16's published inference: L resized to 256, ab upsampled bilinearly to full size."""
    from napari_colorize.core.color import gray_to_l, lab_to_rgb_t

    l_full = torch.from_numpy(gray_to_l(gray))[None, None]
    l_rs = F.interpolate(l_full, size=(256, 256), mode="bilinear", align_corners=False)
    ab = net(l_rs - 50.0) * 110.0
    ab = F.interpolate(ab, size=l_full.shape[-2:], mode="bilinear", align_corners=False)
    return lab_to_rgb_t(torch.cat([l_full, ab], 1))[0].clamp(0, 1).permute(1, 2, 0).numpy()


def timeit(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--model", default=None, help="model name or path (default: the bundled one)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from skimage import data
    from skimage.transform import resize

    from napari_colorize import colorize, load_model

    model = load_model(args.model)
    net = eccv16()
    n_ours = model.n_parameters()
    n_eccv = sum(p.numel() for p in net.parameters())
    base = data.camera().astype(np.float32) / 255.0
    print(f"torch {torch.__version__}, {args.threads} threads; ours {n_ours / 1e6:.2f} M parameters "
          f"(working size {model.working_size}), ECCV16 {n_eccv / 1e6:.1f} M parameters\n")
    print("| input | ours (s) | ours (s / MP) | ECCV16 pipeline (s) | ECCV16 / ours |")
    print("|---|---|---|---|---|")
    for size in args.sizes:
        gray = resize(base, (size, size), anti_aliasing=size < 512).astype(np.float32)
        ours = timeit(lambda g=gray: colorize(g, model=model), args.repeat)
        theirs = timeit(lambda g=gray: eccv16_pipeline(net, g), args.repeat)
        mp = size * size / 1e6
        print(f"| {size} x {size} | {ours:.3f} | {ours / mp:.3f} | {theirs:.3f} | {theirs / ours:.1f}x |")
    # network alone at 256 x 256, the size both see there
    x_ours = torch.zeros(1, 4, 256, 256)
    x_eccv = torch.zeros(1, 1, 256, 256)
    with torch.inference_mode():
        t_ours = timeit(lambda: model.fast(x_ours), args.repeat)
        t_trained = timeit(lambda: model.net(x_ours), args.repeat)
        t_eccv = timeit(lambda: net(x_eccv), args.repeat)
    print(f"\nnetworks alone at 256 x 256: ours {t_ours * 1e3:.1f} ms as colorize runs it (batch norms "
          f"folded, channels-last; {t_trained * 1e3:.1f} ms as trained), ECCV16 {t_eccv * 1e3:.1f} ms "
          f"({t_eccv / t_ours:.1f}x)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
