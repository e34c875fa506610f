"""The network's decoding: soft encoding, annealed mean, rebalancing, regression head, calm, neutral, context."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_colorize.core.color import ab_bins, rgb_to_lab
from napari_colorize.core.model import annealed_mean, rebalance_weights, soft_encode


def test_soft_encoding_and_annealed_mean_decode_a_bin_center():
    bins = torch.from_numpy(ab_bins())
    target = bins[[10, 100]].T.reshape(1, 2, 1, 2)
    idx, w = soft_encode(target, bins)
    assert torch.allclose(w.sum(1), torch.ones(1, 1, 2))
    assert idx[0, 0, 0, 0] == 10 and idx[0, 0, 0, 1] == 100
    logits = torch.full((1, len(bins), 1, 2), -20.0)
    logits[0, 10, 0, 0] = logits[0, 100, 0, 1] = 20.0
    ab = annealed_mean(logits, bins, 0.38)
    assert torch.allclose(ab, target, atol=1e-3)


def test_temperature_moves_from_mode_to_mean():
    bins = torch.tensor([[0.0, 0.0], [60.0, 0.0]])
    logits = torch.log(torch.tensor([0.6, 0.4])).reshape(1, 2, 1, 1)
    mean = annealed_mean(logits, bins, 1.0)[0, 0, 0, 0]
    cold = annealed_mean(logits, bins, 0.05)[0, 0, 0, 0]
    assert mean == pytest.approx(24.0, abs=1e-4)
    assert float(cold) < 0.1


def test_debiasing_undoes_the_rebalancing_weights():
    bins = torch.tensor([[0.0, 0.0], [50.0, 0.0]])
    w = torch.tensor([0.5, 4.0])
    # a network trained with weights w predicts roughly w * p; log-bias -log(w) recovers p
    p = torch.tensor([0.8, 0.2])
    biased = torch.log(w * p / (w * p).sum()).reshape(1, 2, 1, 1)
    ab = annealed_mean(biased, bins, 1.0, -torch.log(w))
    assert float(ab[0, 0, 0, 0]) == pytest.approx(10.0, abs=1e-4)
    assert float(annealed_mean(biased, bins, 1.0)[0, 0, 0, 0]) > 30.0


def test_rebalancing_favours_rare_bins():
    prior = torch.tensor([0.7, 0.2, 0.09, 0.01])
    w = rebalance_weights(prior, 0.5)
    assert float((prior * w).sum()) == pytest.approx(1.0, abs=1e-5)
    assert (torch.diff(w) > 0).all()


def _tiny_model(regression: bool):
    from napari_colorize.core.modelfile import Colorizer

    torch.manual_seed(0)
    bins = torch.from_numpy(ab_bins())
    return Colorizer.new(bins, width=4, working_size=64, regression=regression)


def test_regression_head_is_split_from_the_logits_and_starts_at_gray():
    from napari_colorize.core.model import decode, split_output

    m = _tiny_model(regression=True)
    m.net.eval()
    out = m.net(torch.randn(2, 4, 32, 32))
    q = m.bins.shape[0]
    assert out.shape == (2, q + 2, 16, 16)
    logits, ab = split_output(out, q)
    assert logits.shape[1] == q and ab.shape[1] == 2
    assert torch.all(ab == 0)  # zero-initialised last layer: the gray baseline
    assert torch.all(decode(out, m.bins, 0.5) == 0)
    # vivid 1 is the distribution's annealed mean, vivid 0.5 half way there
    full = decode(out, m.bins, 0.5, vivid=1.0)
    assert torch.allclose(full, annealed_mean(logits, m.bins, 0.5))
    assert torch.allclose(decode(out, m.bins, 0.5, vivid=0.5), 0.5 * full)
    # a bin-only network is decoded as before
    bare = _tiny_model(regression=False).net.eval()
    out2 = bare(torch.randn(1, 4, 32, 32))
    assert split_output(out2, q)[1] is None
    assert torch.allclose(decode(out2, m.bins, 0.5), annealed_mean(out2, m.bins, 0.5))


def test_adding_a_regression_head_keeps_the_bin_head(tmp_path):
    from napari_colorize.core.model import split_output
    from napari_colorize.core.modelfile import load

    m = _tiny_model(regression=False)
    m.net.eval()
    x = torch.randn(1, 4, 32, 32)
    before = m.net(x)
    m.add_regression_head()
    m.net.eval()
    logits, ab = split_output(m.net(x), m.bins.shape[0])
    assert torch.allclose(logits, before, atol=1e-6)
    assert ab is not None and m.regression
    with torch.no_grad():
        m.net.reg[-1].bias.fill_(0.1)
    back = load(m.save(tmp_path / "reg"))
    assert back.regression
    assert torch.allclose(back.net(x), m.net(x), atol=1e-6)


def test_regression_loss_trains_the_regression_head():
    from napari_colorize.core.model import split_output
    from napari_colorize.core.training import loss_fn

    rng = np.random.default_rng(0)
    rgb = np.zeros((4, 32, 32, 3), np.uint8)
    rgb[..., 0] = 200  # saturated red: the regressed ab must move away from zero
    m = _tiny_model(regression=True)
    opt = torch.optim.Adam(m.net.parameters(), lr=1e-2)
    m.net.train()
    for _ in range(30):
        loss = loss_fn(m, rgb, rng)
        opt.zero_grad()
        loss.backward()
        opt.step()
    m.net.eval()
    x = torch.zeros(1, 4, 32, 32)
    _, ab = split_output(m.net(x), m.bins.shape[0])
    assert ab[:, 0].mean() > 10  # red has a > 0 in Lab


def test_calm_pulls_uncertain_pixels_toward_neutral_unless_hinted():
    from napari_colorize.core.color import ab_bins
    from napari_colorize.core.modelfile import Colorizer

    bins = torch.from_numpy(ab_bins())
    m = Colorizer.new(bins, regression=True, width=8)
    q = bins.shape[0]
    out = torch.zeros(1, q + 2, 2, 2)
    out[:, q:] = 40.0 / 110.0  # regressed ab of 40
    out[0, 0, 0, 0] = 50.0  # one confident pixel; the others are uniform (entropy 1)
    m.config.update(vivid=0.0, calm=0.5)
    ab = m.decode(out)
    assert torch.allclose(ab[0, :, 0, 0], torch.tensor([40.0, 40.0]), atol=0.1)  # sure: kept
    assert torch.allclose(ab[0, :, 1, 1], torch.tensor([20.0, 20.0]), atol=0.1)  # unsure: halved
    assert torch.allclose(m.decode(out, hinted=True), torch.full((1, 2, 2, 2), 40.0))


def test_neutral_pulls_pixels_that_may_be_gray_toward_gray_unless_hinted():
    from napari_colorize.core.color import ab_bins
    from napari_colorize.core.model import NEUTRAL_BIN_CHROMA, neutral_probability
    from napari_colorize.core.modelfile import Colorizer

    bins = torch.from_numpy(ab_bins())
    m = Colorizer.new(bins, regression=True, width=8)
    q = bins.shape[0]
    chroma = torch.hypot(bins[:, 0], bins[:, 1])
    gray_bin = int(chroma.argmin())
    vivid_bin = int(torch.argmin((bins[:, 0] - 40) ** 2 + (bins[:, 1] - 40) ** 2))
    assert chroma[gray_bin] < NEUTRAL_BIN_CHROMA < chroma[vivid_bin]
    out = torch.full((1, q + 2, 1, 3), -50.0)
    out[:, q:] = 40.0 / 110.0  # regressed ab of 40 everywhere
    out[0, gray_bin, 0, 0] = 50.0  # sure it is gray
    out[0, vivid_bin, 0, 1] = 50.0  # sure it is colored
    out[0, gray_bin, 0, 2] = out[0, vivid_bin, 0, 2] = 50.0  # either, half and half
    p0 = neutral_probability(out[:, :q], bins)[0, 0, 0]
    assert torch.allclose(p0, torch.tensor([1.0, 0.0, 0.5]), atol=1e-3)
    m.config.update(vivid=0.0, calm=0.0, neutral=0.5)
    ab = m.decode(out)[0, 0, 0]
    expected = 40.0 * (1 - 0.5 * torch.tensor([1.0, 0.0, 0.5]).sqrt())
    assert torch.allclose(ab, expected, atol=0.05)
    assert torch.allclose(m.decode(out, hinted=True), torch.full((1, 2, 1, 3), 40.0))


def test_windows_share_the_context_of_the_whole_plane(model, photo):
    from napari_colorize.core.model import encode_input

    assert model.net.glob is not None  # the bundled model has a global branch
    l_chan = torch.from_numpy(rgb_to_lab(photo[::4, ::4] / 255.0)[..., 0].copy())[None, None]
    x = encode_input(l_chan, torch.zeros(1, 2, 128, 128), torch.zeros(1, 1, 128, 128))
    with torch.no_grad():
        whole = model.net(x)
        ctx = model.net.context(x)
        assert torch.allclose(model.net(x, context=ctx), whole, atol=1e-5)
        # a window given the whole plane's context differs from the window pooling only itself
        win, win_own = model.net(x[..., :64], context=ctx), model.net(x[..., :64])
    assert (win - win_own).abs().max() > 1e-2


def test_decoding_matches_the_plain_formulas_for_logits_of_any_range():
    from napari_colorize.core.model import decode, normalized_entropy, probabilities

    bins = torch.from_numpy(ab_bins())
    q = bins.shape[0]
    gen = torch.Generator().manual_seed(0)
    for spread in (1.0, 30.0, 400.0):  # the last far beyond where exp underflows
        out = torch.randn(2, q + 2, 3, 5, generator=gen) * spread
        out[:, q:] = torch.randn(2, 2, 3, 5, generator=gen) * 0.3
        logits, ab = out[:, :q].double(), out[:, q:].double() * 110.0
        for t in (0.5, 0.38, 1.0):
            p = torch.softmax(logits / t, 1)
            mean = torch.einsum("bqhw,qc->bchw", p, bins.double())
            assert torch.allclose(probabilities(out[:, :q], t).double(), p, atol=1e-4)
            p1 = torch.softmax(logits, 1)
            ent = -(p1 * torch.log_softmax(logits, 1)).sum(1, keepdim=True) / np.log(q)
            near = (torch.hypot(bins[:, 0], bins[:, 1]) < 12.0).double()
            gray = torch.einsum("bqhw,q->bhw", p1, near)[:, None]
            expected = (ab + 0.85 * (mean - ab)) * (1 - 0.3 * ent) * (1 - 0.35 * gray.sqrt())
            got = decode(out, bins, t, vivid=0.85, calm=0.3, neutral=0.35).double()
            assert torch.allclose(got, expected, atol=1e-3), (spread, t)
            assert torch.allclose(normalized_entropy(out[:, :q]).double(), ent, atol=1e-4)


def test_inference_network_matches_and_follows_its_weights(model):
    import copy

    m = copy.deepcopy(model)
    x = torch.randn(1, 4, 64, 96, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        fast = m.fast
        assert m.fast is fast  # kept while the weights stay
        ref = m.net(x)
        assert torch.allclose(fast(x), ref, atol=1e-3 * float(ref.abs().max()))
        assert not any(isinstance(mod, torch.nn.BatchNorm2d) for mod in fast.modules())
    with torch.no_grad():
        m.net.head.bias.add_(1.0)  # an in-place change, as a fine-tuning step makes
    with torch.inference_mode():
        assert m.fast is not fast
        assert torch.allclose(m.fast(x), m.net(x), atol=1e-3 * float(ref.abs().max()))
    m.net.train()
    assert m.fast is m.net  # training runs the network itself, batch norms and all
