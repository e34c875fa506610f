"""Colorization metrics (napari-free), each against an independent computation or a known answer."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_colorize import InputError
from napari_colorize import metrics as M
from napari_colorize.core.color import rgb_to_lab
from napari_colorize.core.metrics import neutral_chroma

# Sharma, Wu and Dalal (2005), Color Res. Appl. 30(1), Table 1: (L1, a1, b1), (L2, a2, b2), ΔE00.
SHARMA = [
    ((50.0000, 2.6772, -79.7751), (50.0000, 0.0000, -82.7485), 2.0425),
    ((50.0000, 3.1571, -77.2803), (50.0000, 0.0000, -82.7485), 2.8615),
    ((50.0000, 2.8361, -74.0200), (50.0000, 0.0000, -82.7485), 3.4412),
    ((50.0000, -1.3802, -84.2814), (50.0000, 0.0000, -82.7485), 1.0000),
    ((50.0000, -1.1848, -84.8006), (50.0000, 0.0000, -82.7485), 1.0000),
    ((50.0000, -0.9009, -85.5211), (50.0000, 0.0000, -82.7485), 1.0000),
    ((50.0000, 0.0000, 0.0000), (50.0000, -1.0000, 2.0000), 2.3669),
    ((50.0000, -1.0000, 2.0000), (50.0000, 0.0000, 0.0000), 2.3669),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0009), 7.1792),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0010), 7.1792),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0011), 7.2195),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0012), 7.2195),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0009, -2.4900), 4.8045),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0010, -2.4900), 4.8045),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0011, -2.4900), 4.7461),
    ((50.0000, 2.5000, 0.0000), (50.0000, 0.0000, -2.5000), 4.3065),
    ((50.0000, 2.5000, 0.0000), (73.0000, 25.0000, -18.0000), 27.1492),
    ((50.0000, 2.5000, 0.0000), (61.0000, -5.0000, 29.0000), 22.8977),
    ((50.0000, 2.5000, 0.0000), (56.0000, -27.0000, -3.0000), 31.9030),
    ((50.0000, 2.5000, 0.0000), (58.0000, 24.0000, 15.0000), 19.4535),
    ((50.0000, 2.5000, 0.0000), (50.0000, 3.1736, 0.5854), 1.0000),
    ((50.0000, 2.5000, 0.0000), (50.0000, 3.2972, 0.0000), 1.0000),
    ((50.0000, 2.5000, 0.0000), (50.0000, 1.8634, 0.5757), 1.0000),
    ((50.0000, 2.5000, 0.0000), (50.0000, 3.2592, 0.3350), 1.0000),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((63.0109, -31.0961, -5.8663), (62.8187, -29.7946, -4.0864), 1.2630),
    ((61.2901, 3.7196, -5.3901), (61.4292, 2.2480, -4.9620), 1.8731),
    ((35.0831, -44.1164, 3.7933), (35.0232, -40.0716, 1.5901), 1.8645),
    ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),
    ((36.4612, 47.8580, 18.3852), (36.2715, 50.5065, 21.2231), 1.4146),
    ((90.8027, -2.0831, 1.4410), (91.1528, -1.6435, 0.0447), 1.4441),
    ((90.9257, -0.5406, -0.9208), (88.6381, -0.8985, -0.7239), 1.5381),
    ((6.7747, -0.2908, -2.4247), (5.8714, -0.0985, -2.2286), 0.6377),
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
]


@pytest.fixture(scope="module")
def pair():
    """A 48 x 64 crop of a color photo and a noisy, slightly desaturated version of it."""
    from skimage import data

    ref = data.astronaut()[100:148, 180:244].astype(np.float64) / 255.0
    rng = np.random.default_rng(1)
    gray = ref.mean(axis=-1, keepdims=True)
    img = np.clip(0.7 * ref + 0.3 * gray + rng.normal(0, 0.03, ref.shape), 0, 1)
    return img, ref


def _const(rgb, shape=(16, 16)):
    return np.broadcast_to(np.asarray(rgb, dtype=np.uint8), (*shape, 3)).copy()


# -- colorfulness ---------------------------------------------------------------------------
def test_colorfulness_of_gray_is_zero_and_of_a_constant_color_is_the_mean_term():
    rng = np.random.default_rng(0)
    gray = np.repeat(rng.integers(0, 256, (20, 20, 1), dtype=np.uint8), 3, axis=2)
    assert M.colorfulness(gray) == pytest.approx(0.0, abs=1e-9)
    r, g, b = 200.0, 50.0, 30.0
    expected = 0.3 * np.sqrt((r - g) ** 2 + ((r + g) / 2 - b) ** 2)
    assert M.colorfulness(_const((200, 50, 30))) == pytest.approx(expected, rel=1e-12)


def test_colorfulness_of_half_red_half_blue_by_hand():
    img = np.zeros((10, 10, 3), dtype=np.uint8)
    img[:5, :, 0] = 255
    img[5:, :, 2] = 255
    # rg takes 255 and 0; yb takes 127.5 and -255, each on half the pixels
    std_rg, mean_rg = 127.5, 127.5
    std_yb, mean_yb = (127.5 + 255) / 2, (127.5 - 255) / 2
    expected = np.hypot(std_rg, std_yb) + 0.3 * np.hypot(mean_rg, mean_yb)
    assert M.colorfulness(img) == pytest.approx(expected, rel=1e-12)


def test_integer_and_float_inputs_agree(pair):
    img, _ = pair
    u8 = (img * 255).round().astype(np.uint8)
    f = u8 / 255.0
    u16 = u8.astype(np.uint16) * 257  # 255 * 257 = 65535: the same intensities in 16 bits
    i64 = u8.astype(np.int64)
    expected = M.report(f)
    for variant in (u8, u16, i64, f.astype(np.float32)):
        got = M.report(variant)
        for k in M.NO_REFERENCE_KEYS:
            assert got[k] == pytest.approx(expected[k], rel=1e-5, abs=1e-5), (variant.dtype, k)


# -- saturation, contrast ----------------------------------------------------------------------
def test_saturation_against_skimage_hsv_and_lab(pair):
    from skimage.color import rgb2hsv, rgb2lab

    img, _ = pair
    lab = rgb2lab(img)
    s = M.saturation(img)
    assert s["hsv_saturation"] == pytest.approx(rgb2hsv(img)[..., 1].mean(), rel=1e-9)
    assert s["chroma"] == pytest.approx(np.sqrt(lab[..., 1] ** 2 + lab[..., 2] ** 2).mean(), rel=1e-9)
    gray = M.saturation(_const((90, 90, 90)))
    assert gray["chroma"] == pytest.approx(0, abs=0.01) and gray["hsv_saturation"] == 0
    red = M.saturation(_const((255, 0, 0)))
    # sRGB red is L*a*b* (53.24, 80.09, 67.20) under D65
    assert red["hsv_saturation"] == 1.0
    assert red["chroma"] == pytest.approx(np.hypot(80.09, 67.20), abs=0.05)


def test_contrast_of_black_and_white_halves_and_of_a_flat_image():
    img = np.zeros((8, 8, 3), dtype=np.uint8)
    img[:, 4:] = 255  # L* 0 and 100 on half the pixels each
    c = M.contrast(img)
    assert c["rms"] == pytest.approx(50.0, abs=1e-3)
    assert c["michelson"] == pytest.approx(1.0, abs=1e-6)
    flat = M.contrast(_const((120, 60, 200)))
    assert flat["rms"] == pytest.approx(0.0, abs=1e-9) and flat["michelson"] == pytest.approx(0.0, abs=1e-9)


# -- against a reference ----------------------------------------------------------------------
def test_psnr_matches_skimage_and_known_cases(pair):
    from skimage.metrics import peak_signal_noise_ratio

    img, ref = pair
    assert M.psnr(img, ref) == pytest.approx(peak_signal_noise_ratio(ref, img, data_range=1.0), rel=1e-12)
    assert M.psnr(ref, ref) == np.inf
    flat = np.full((8, 8, 3), 0.5)
    assert M.psnr(flat + 0.1, flat) == pytest.approx(20.0, rel=1e-9)  # MSE 0.01


def test_ssim_matches_skimage_per_channel_mean(pair):
    from skimage.metrics import structural_similarity

    img, ref = pair
    per_channel = [structural_similarity(img[..., c], ref[..., c], data_range=1.0, gaussian_weights=True,
                                         sigma=1.5, use_sample_covariance=False) for c in range(3)]
    assert M.ssim(img, ref) == pytest.approx(np.mean(per_channel), rel=1e-9)
    assert M.ssim(ref, ref) == pytest.approx(1.0, abs=1e-12)
    with pytest.raises(InputError, match="at least 11 x 11"):
        M.ssim(img[:8, :8], ref[:8, :8])


def test_ciede2000_against_sharma_2005_test_pairs():
    lab1 = np.array([p[0] for p in SHARMA])
    lab2 = np.array([p[1] for p in SHARMA])
    expected = np.array([p[2] for p in SHARMA])
    np.testing.assert_allclose(M.ciede2000(lab1, lab2), expected, atol=1e-4, rtol=0)
    np.testing.assert_allclose(M.ciede2000(lab2, lab1), expected, atol=1e-4, rtol=0)  # symmetric


def test_delta_e_mean_and_p95_match_skimage_ciede2000(pair):
    from skimage.color import deltaE_ciede2000, rgb2lab

    img, ref = pair
    d = deltaE_ciede2000(rgb2lab(img), rgb2lab(ref))
    de = M.delta_e(img, ref)
    assert de["mean"] == pytest.approx(d.mean(), rel=1e-9)
    assert de["p95"] == pytest.approx(np.percentile(d, 95), rel=1e-9)
    assert M.delta_e(ref, ref)["p95"] == pytest.approx(0.0, abs=1e-9)


def test_ab_rmse_and_colorfulness_diff_of_the_gray_baseline(pair):
    from skimage.color import rgb2lab

    _, ref = pair
    gray = M.gray_baseline(ref)
    lab = rgb2lab(ref)
    # the gray baseline has a = b = 0, so its ab error is the reference's RMS chroma
    assert M.ab_rmse(gray, ref) == pytest.approx(np.sqrt(np.mean(lab[..., 1] ** 2 + lab[..., 2] ** 2)), rel=1e-3)
    assert M.ab_rmse(ref, ref) == 0.0
    # lab2rgb leaves R, G and B of the baseline equal only to about 1e-5
    assert M.colorfulness_diff(gray, ref) == pytest.approx(-M.colorfulness(ref), abs=0.01)


def test_report_has_everything_and_the_gray_baseline_beside_it(pair):
    img, ref = pair
    r = M.report(img, ref)
    assert set(M.NO_REFERENCE_KEYS) | set(M.FULL_REFERENCE_KEYS) <= r.keys()
    assert {f"{k}_gray" for k in M.FULL_REFERENCE_KEYS} <= r.keys()
    assert r["n_planes"] == 1 and "per_plane" not in r
    gray = M.gray_baseline(ref)
    assert r["psnr_gray"] == pytest.approx(M.psnr(gray, ref), rel=1e-9)
    assert r["ssim_gray"] == pytest.approx(M.ssim(gray, ref), rel=1e-9)
    assert r["delta_e_mean_gray"] == pytest.approx(M.delta_e(gray, ref)["mean"], rel=1e-9)
    assert r["ab_rmse_gray"] == pytest.approx(M.ab_rmse(gray, ref), rel=1e-9)
    assert r["psnr"] == pytest.approx(M.psnr(img, ref)) and r["ssim"] == pytest.approx(M.ssim(img, ref))
    assert r["colorfulness"] == pytest.approx(M.colorfulness(img))
    # a desaturated colorization still carries more of the reference's color than no color at all
    assert r["ab_rmse"] < r["ab_rmse_gray"]
    assert not (set(M.FULL_REFERENCE_KEYS) & M.report(img).keys())


def test_neutral_chroma_measures_color_painted_on_neutral_pixels():
    ref = np.full((8, 8, 3), 0.5, np.float32)
    ref[:, 4:] = (0.9, 0.2, 0.2)  # a saturated half that does not count
    assert neutral_chroma(ref, ref) < 0.01
    tinted = ref.copy()
    tinted[:, :4] = (0.6, 0.5, 0.4)  # a warm cast on the gray half
    c = neutral_chroma(tinted, ref)
    lab = rgb_to_lab(tinted[:, :4])
    np.testing.assert_allclose(c, np.hypot(lab[..., 1], lab[..., 2]).mean(), rtol=1e-4)
    assert c > 10
    assert np.isnan(neutral_chroma(ref[:, 4:], ref[:, 4:]))  # no neutral pixel: no figure


# -- stacks and dask --------------------------------------------------------------------------
def test_stacks_give_per_plane_values_and_their_mean(pair):
    img, ref = pair
    stack = np.stack([img, ref, img[::-1]])
    refs = np.stack([ref, ref, ref[::-1]])
    per = M.psnr(stack, refs, per_plane=True)
    assert per.shape == (3,) and per[1] == np.inf
    assert per[0] == pytest.approx(M.psnr(img, ref)) and per[2] == pytest.approx(M.psnr(img, ref))
    cf = M.colorfulness(stack, per_plane=True)
    np.testing.assert_allclose(cf, [M.colorfulness(img), M.colorfulness(ref), M.colorfulness(img)])
    assert M.colorfulness(stack) == pytest.approx(cf.mean())
    r = M.report(stack[:2].reshape(2, 1, *img.shape), refs[:2].reshape(2, 1, *img.shape))
    assert r["n_planes"] == 2 and r["per_plane"]["ssim"].shape == (2, 1)
    assert r["ssim"] == pytest.approx((M.ssim(img, ref) + 1.0) / 2)


def test_dask_stacks_are_computed_one_plane_at_a_time(pair):
    import dask.array as da
    from dask.callbacks import Callback

    img, ref = pair
    stack = np.stack([img, ref, img])
    seen = []

    def record(block):
        seen.append(block.shape[0])
        return block

    lazy = da.from_array(stack, chunks=(1, *img.shape)).map_blocks(record, meta=np.empty((0, 0, 0, 0)))
    computes = []
    with Callback(start=lambda dsk: computes.append(len(dsk))):
        got = M.report(lazy, stack[::-1])
    expected = M.report(stack, stack[::-1])
    assert len(computes) == 3 and seen == [1, 1, 1]  # one compute per plane, never the whole stack
    for k in ("colorfulness", "psnr", "ssim", "delta_e_p95", "hue_entropy", "psnr_gray"):
        assert got[k] == pytest.approx(expected[k]), k


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize(("image", "match"), [
    (np.zeros((16, 16, 4)), "RGBA"),
    (np.zeros((16, 16)), "trailing axis of 3 channels"),
    (np.zeros((16, 16, 2)), "trailing axis of 3 channels"),
    (np.zeros((0, 16, 3)), "empty"),
    (np.full((16, 16, 3), 200.0), "float RGB must lie in"),
    (np.full((16, 16, 3), -3, dtype=np.int16), "signed integers"),
    (np.ones((16, 16, 3), dtype=bool), "pixel type bool"),
])
def test_bad_images_get_a_clear_message(image, match):
    with pytest.raises(InputError, match=match):
        M.report(image)


def test_nan_and_shape_mismatch_get_a_clear_message(pair):
    img, ref = pair
    bad = img.copy()
    bad[3, 4, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        M.colorfulness(bad)
    with pytest.raises(InputError, match="NaN"):
        M.psnr(img, bad)
    with pytest.raises(InputError, match=r"differ in shape: \(48, 64, 3\) vs \(48, 63, 3\)"):
        M.report(img, ref[:, :63])


@given(h=st.integers(1, 70), w=st.integers(1, 40), band=st.integers(1, 300))
@settings(max_examples=30, deadline=None)
def test_bands_of_rows_give_the_whole_planes_values(h, w, band):
    from skimage.color import deltaE_ciede2000, rgb2lab

    from napari_colorize.core import rgb_planes

    rng = np.random.default_rng(h * 100 + w)
    a, b = rng.random((h, w, 3)), rng.random((h, w, 3))
    old, rgb_planes.BAND_PIXELS = rgb_planes.BAND_PIXELS, band  # many bands, some of a single row
    try:
        np.testing.assert_allclose(rgb_planes.to_lab(a), rgb2lab(a), rtol=0, atol=1e-12)
        np.testing.assert_allclose(M.ciede2000(rgb2lab(a), rgb2lab(b)), deltaE_ciede2000(rgb2lab(a), rgb2lab(b)),
                                   rtol=0, atol=1e-12)
    finally:
        rgb_planes.BAND_PIXELS = old
