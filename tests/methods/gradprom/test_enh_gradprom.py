"""GradProm: hand-computed updates for both cosine signs, the Lemma-3.1 property, φ's gradient."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from medtask.errors import InvalidParameterError
from medtask.methods.gradprom.strategies import (
    TaskDrivenEnhancement,
    combine_gradients,
    cosine,
    make_strategy,
)

LAM = 0.5


def tiny_models(w=0.8, c=0.1):
    enh = nn.Conv2d(1, 1, 1)  # out = w·x + c: θ = (w, c)
    with torch.no_grad():
        enh.weight.fill_(w)
        enh.bias.fill_(c)
    rec = nn.Sequential(nn.Flatten(), nn.Linear(2, 2))
    with torch.no_grad():
        rec[1].weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 1.5]]))
        rec[1].bias.copy_(torch.tensor([0.2, -0.1]))
    return enh.double(), rec.double()


def hand_gradients(x, y, label, w=0.8, c=0.1):
    """G_IP, G_VR (= λ∇θ L_VR) and ∇φ L_VR written out by hand for the tiny models."""
    A = torch.tensor([[1.0, -2.0], [0.5, 1.5]], dtype=torch.float64)
    b = torch.tensor([0.2, -0.1], dtype=torch.float64)
    out = w * x + c
    r = out - y
    n = x.numel()
    g_ip = [2.0 / n * (r * x).sum(), 2.0 / n * r.sum()]
    z = A @ out + b
    p = torch.exp(z) / torch.exp(z).sum()
    e = p - torch.nn.functional.one_hot(torch.tensor(label), 2).double()
    d = A.T @ e  # ∂L_VR/∂out
    g_vr = [LAM * (d * x).sum(), LAM * d.sum()]
    return g_ip, g_vr, {"weight": torch.outer(e, out), "bias": e}


def batch_for(x, y, label):
    return {"input": x.view(1, 1, 1, 2), "target": y.view(1, 1, 1, 2), "label": torch.tensor([label])}


X = torch.tensor([0.3, 0.9], dtype=torch.float64)
CASES = {  # target far above / below the output flips G_IP, and so the sign of the cosine
    "positive": (torch.tensor([-1.0, -1.0], dtype=torch.float64), 0),
    "negative": (torch.tensor([2.0, 2.0], dtype=torch.float64), 0),
}


@pytest.mark.parametrize("case", ["positive", "negative"])
@pytest.mark.parametrize("combiner", ["gate", "lemma", "sum"])
def test_update_matches_hand_computation(case, combiner):
    y, label = CASES[case]
    g_ip, g_vr, g_phi = hand_gradients(X, y, label)
    cos = float((g_ip[0] * g_vr[0] + g_ip[1] * g_vr[1]) / math.hypot(*g_ip) / math.hypot(*g_vr))
    assert (cos >= 0) == (case == "positive")
    gate = {"sum": 1.0, "gate": float(cos >= 0), "lemma": max(0.0, cos)}[combiner]
    enh, rec = tiny_models()
    s = TaskDrivenEnhancement(enh, rec, lam=LAM, combiner=combiner)
    logs = s.compute_gradients(batch_for(X, y, label), 0)
    assert logs["cos"] == pytest.approx(cos)
    assert logs["conflict"] == float(cos < 0)
    assert logs["dropped"] == float(gate == 0)
    assert float(enh.weight.grad) == pytest.approx(float(g_ip[0] + gate * g_vr[0]))
    assert float(enh.bias.grad) == pytest.approx(float(g_ip[1] + gate * g_vr[1]))
    # φ always gets ∇φ L_VR, whatever the gate and λ
    assert torch.allclose(rec[1].weight.grad, g_phi["weight"])
    assert torch.allclose(rec[1].bias.grad, g_phi["bias"])


@pytest.mark.parametrize("case", ["positive", "negative"])
def test_phi_gradient_is_the_same_for_every_strategy(case):
    y, label = CASES[case]
    grads = []
    for name in ("joint", "gradprom", "gradprom-lemma"):
        enh, rec = tiny_models()
        make_strategy(name, enhancer=enh, recogniser=rec, lam=LAM).compute_gradients(batch_for(X, y, label), 0)
        grads.append(torch.cat([p.grad.flatten() for p in rec.parameters()]))
    enh, rec = tiny_models()  # plain joint (one backward pass) too
    make_strategy("joint", enhancer=enh, recogniser=rec, lam=LAM, diagnostics=False).compute_gradients(
        batch_for(X, y, label), 0)
    grads.append(torch.cat([p.grad.flatten() for p in rec.parameters()]))
    for g in grads[1:]:
        assert torch.allclose(g, grads[0])


def test_plain_joint_equals_diagnostic_joint():
    y, label = CASES["negative"]
    out = []
    for diag in (True, False):
        enh, rec = tiny_models()
        make_strategy("joint", enhancer=enh, recogniser=rec, lam=LAM, diagnostics=diag).compute_gradients(
            batch_for(X, y, label), 0)
        out.append(torch.cat([enh.weight.grad.flatten(), enh.bias.grad.flatten()]))
    assert torch.allclose(out[0], out[1])


def test_frozen_does_not_touch_phi():
    enh, rec = tiny_models()
    s = make_strategy("frozen", enhancer=enh, recogniser=rec, lam=LAM)
    logs = s.compute_gradients(batch_for(X, *CASES["negative"]), 0)
    assert all(p.grad is None for p in rec.parameters())
    assert "recogniser_vr" not in s.optimizers() and "cos" in logs and logs["dropped"] == 0


def test_per_layer_groups_gate_each_layer():
    g_ip = [torch.tensor([1.0, 0.0]), torch.tensor([1.0])]
    g_vr = [torch.tensor([-1.0, 0.0]), torch.tensor([2.0])]
    upd, logs = combine_gradients(g_ip, g_vr, "gate", groups=[[0], [1]])
    assert torch.equal(upd[0], g_ip[0]) and torch.equal(upd[1], torch.tensor([3.0]))
    assert logs["dropped"] == 0.5 and logs["conflict"] == 0.5
    assert logs["cos"] == pytest.approx(float(cosine(g_ip, g_vr)))
    upd, logs = combine_gradients(g_ip, g_vr, "gate")  # global: cos = 1/sqrt(10) > 0 -> keep all
    assert torch.equal(upd[0], torch.tensor([0.0, 0.0])) and logs["dropped"] == 0


vectors = st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=64), min_size=6, max_size=6)


@settings(max_examples=200, deadline=None)
@given(a=vectors, b=vectors, mode=st.sampled_from(["gate", "lemma"]), per_layer=st.booleans())
def test_update_never_opposes_g_ip(a, b, mode, per_layer):
    g_ip = [torch.tensor(a[:2], dtype=torch.float64), torch.tensor(a[2:], dtype=torch.float64)]
    g_vr = [torch.tensor(b[:2], dtype=torch.float64), torch.tensor(b[2:], dtype=torch.float64)]
    upd, _ = combine_gradients(g_ip, g_vr, mode, groups=[[0], [1]] if per_layer else None)
    inner = sum(float((u * g).sum()) for u, g in zip(upd, g_ip))
    scale = sum(float((g * g).sum()) for g in g_ip) + sum(float((g * g).sum()) for g in g_vr)
    assert inner >= -1e-9 * max(scale, 1.0)


def test_bad_arguments():
    enh, rec = tiny_models()
    with pytest.raises(InvalidParameterError, match="gradprom"):
        make_strategy("gradpromm", enhancer=enh, recogniser=rec)
    with pytest.raises(InvalidParameterError):
        combine_gradients([torch.ones(1)], [torch.ones(1)], "max")
    with pytest.raises(InvalidParameterError, match="lambda"):
        make_strategy("gradprom", enhancer=enh, recogniser=rec, lam=0)
    with pytest.raises(InvalidParameterError, match="needs a recogniser"):
        make_strategy("joint", enhancer=enh)
    s = make_strategy("gradprom", enhancer=enh, recogniser=rec)
    with pytest.raises(InvalidParameterError, match="num_classes"):
        s.compute_gradients(batch_for(X, X, 5), 0)


@pytest.mark.parametrize("name", ["gradprom", "gradprom-lemma", "joint", "frozen"])
def test_one_forward_pass_per_step(name):
    enh, rec = tiny_models()
    calls = {"enh": 0, "rec": 0}
    enh.register_forward_hook(lambda *a: calls.__setitem__("enh", calls["enh"] + 1))
    rec.register_forward_hook(lambda *a: calls.__setitem__("rec", calls["rec"] + 1))
    make_strategy(name, enhancer=enh, recogniser=rec, lam=LAM).compute_gradients(batch_for(X, *CASES["negative"]), 0)
    assert calls == {"enh": 1, "rec": 1}
