"""Study C's training strategies: task-driven enhancement with and without Gradient Promotion.

All of them are plug-ins of the one loop :func:`medtask.engine.fit`. Batches come from
:class:`medtask.engine.RandomBatches` with :class:`DegradeBatch` as its ``augment``, which adds
``"input"`` (the degraded X) and ``"target"`` (the enhancer's target: the clean Y when supervised,
a second independent noisy realisation of Y when unsupervised — Noise2Noise) to every batch.

=================  =========================================================================
name               what is trained, on what
=================  =========================================================================
``benchmark-i``    enhancer θ alone on L_IP = MSE(IP(X), target)
``benchmark-ii``   recogniser φ alone on clean images Y (L_VR)
``benchmark-iii``  recogniser φ alone on degraded images X (bicubically up-sampled for SR)
``joint``          θ and φ on L_IP + λ·L_VR  (θ ← G_IP + G_VR; φ ← ∇φ L_VR)
``frozen``         φ pre-trained on clean images and frozen (ESTR-style); θ on L_IP + λ·L_VR
``gradprom``       θ ← G_IP + G_VR·[cos(G_IP, G_VR) ≥ 0]; φ ← ∇φ L_VR (Zhang & Cheng 2025)
``gradprom-lemma`` θ ← G_IP + G_VR·max(0, cos(G_IP, G_VR))  (the form of Lemma 3.1)
=================  =========================================================================

with G_IP = ∇θ L_IP and G_VR = ∇θ λ·L_VR. Joint, Frozen and GradProm are one class,
:class:`TaskDrivenEnhancement`, that differs only in its *gradient combiner* and whether φ is
frozen. The cosine is taken over all of θ flattened (``per_layer=False``, default) or separately
per layer (each module's parameters; ``per_layer=True``) — the paper does not say which.
Every task-driven step logs ``cos`` (the global cosine), ``gate`` (the mean weight given to G_VR),
``conflict`` (fraction of cosine groups with cos < 0) and ``dropped`` (fraction whose G_VR got
weight 0), also for Joint and Frozen, where the cosine is a diagnostic that does not change the
update (there ``dropped`` is 0 and ``conflict`` says how often GradProm *would* have dropped G_VR).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medtask.engine import distributed
from medtask.engine.loop import Strategy
from medtask.engine.strategies import SingleNetwork
from medtask.errors import InvalidParameterError
from medtask.methods.gradprom.degradations import Degradation, make_degradation
from medtask.nn.losses import check_task, recognition_loss

#: the recognition tasks an auxiliary network may have (of :data:`medtask.data.io.TASKS`)
TASKS = ("classification", "segmentation")
COMBINERS = ("sum", "gate", "lemma")
#: strategy name -> its gradient combiner (Joint and Frozen differ only in whether φ is frozen)
COMBINER_OF = {"joint": "sum", "frozen": "sum", "gradprom": "gate", "gradprom-lemma": "lemma"}


# -- batches ----------------------------------------------------------------------------------
class DegradeBatch:
    """``RandomBatches`` augment: optional flips, then ``input`` = degraded image, ``target`` = enhancer target."""

    def __init__(self, degradation: Degradation | str | dict, supervised: bool = True, flip: bool = True) -> None:
        self.degradation = make_degradation(degradation)
        self.supervised = bool(supervised)
        self.flip = bool(flip)
        if not self.supervised and not self.degradation.stochastic:
            self.degradation.noisy_target(torch.zeros(1, 1, 2, 2))  # raises the explanatory error

    def __call__(self, batch: dict[str, Any], gen: torch.Generator) -> dict[str, Any]:
        batch = dict(batch)
        if self.flip:
            flip = torch.rand(len(batch["image"]), generator=gen) < 0.5
            batch["image"] = torch.where(flip[:, None, None, None], batch["image"].flip(-1), batch["image"])
            if "mask" in batch and isinstance(batch["mask"], torch.Tensor):
                batch["mask"] = torch.where(flip[:, None, None], batch["mask"].flip(-1), batch["mask"])
        y = batch["image"]
        batch["input"] = self.degradation(y, gen)
        batch["target"] = y if self.supervised else self.degradation.noisy_target(y, gen)
        return batch


# -- losses -----------------------------------------------------------------------------------
def vr_loss(logits: torch.Tensor, batch: dict[str, Any], task: str) -> torch.Tensor:
    """L_VR of one recogniser: :func:`medtask.nn.losses.recognition_loss` against the batch's
    ``"label"`` (classification) or ``"mask"`` (segmentation)."""
    target = batch["label"] if check_task(task, TASKS) == "classification" else batch["mask"]
    return recognition_loss(logits, target, task)


@dataclass
class Auxiliary:
    """One auxiliary recognition model (VR): the network, its task and its weight inside L_VR."""

    module: nn.Module
    task: str = "classification"
    weight: float = 1.0
    name: str = "vr"

    def __post_init__(self) -> None:
        check_task(self.task, TASKS)


def _as_auxiliaries(recogniser: nn.Module | Auxiliary | Sequence[Auxiliary], task: str) -> list[Auxiliary]:
    if isinstance(recogniser, Auxiliary):
        return [recogniser]
    if isinstance(recogniser, nn.Module):
        return [Auxiliary(recogniser, task)]
    auxes = list(recogniser)
    if not auxes or not all(isinstance(a, Auxiliary) for a in auxes):
        raise InvalidParameterError("recogniser must be an nn.Module, an Auxiliary or a non-empty list of Auxiliary")
    names = [a.name for a in auxes]
    if len(set(names)) != len(names):
        raise InvalidParameterError(f"auxiliary names must be distinct, got {names}")
    return auxes


def _upsample_to(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if x.shape[-2:] == like.shape[-2:]:
        return x
    return F.interpolate(x, size=like.shape[-2:], mode="bicubic", align_corners=False).clamp(0.0, 1.0)


# -- the gradient combiner ----------------------------------------------------------------------
def _dot(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor]) -> torch.Tensor:
    return torch.stack([(x * y).sum() for x, y in zip(a, b)]).sum()


def cosine(a: Sequence[torch.Tensor], b: Sequence[torch.Tensor], eps: float = 1e-12) -> torch.Tensor:
    """Cosine similarity of two gradients given as lists of tensors (flattened and concatenated)."""
    dot = _dot(a, b)
    return dot / (torch.sqrt(_dot(a, a)) * torch.sqrt(_dot(b, b))).clamp_min(eps)


def combine_gradients(
    g_ip: Sequence[torch.Tensor], g_vr: Sequence[torch.Tensor], mode: str = "gate",
    groups: Sequence[Sequence[int]] | None = None,
) -> tuple[list[torch.Tensor], dict[str, float]]:
    """The θ update direction from G_IP and G_VR, and diagnostics.

    ``mode``: ``"sum"`` G_IP + G_VR (Joint/Frozen); ``"gate"`` G_IP + G_VR·[cos ≥ 0] (GradProm);
    ``"lemma"`` G_IP + G_VR·max(0, cos) (Lemma 3.1). ``groups`` (lists of indices into the
    gradient lists) gives per-layer cosines; ``None`` = one group, all of θ flattened.
    Returns ``(update, logs)``, logs = ``cos`` (global cosine), ``gate`` (mean weight on G_VR), ``conflict``
    (fraction of groups with cos < 0) and ``dropped`` (fraction of groups whose G_VR got weight 0).
    """
    if mode not in COMBINERS:
        raise InvalidParameterError(f"unknown gradient combiner {mode!r}; choose one of {COMBINERS}")
    if len(g_ip) != len(g_vr):
        raise InvalidParameterError(f"G_IP has {len(g_ip)} tensors but G_VR has {len(g_vr)}")
    groups = [list(range(len(g_ip)))] if groups is None else [list(g) for g in groups]
    update: list[torch.Tensor | None] = [None] * len(g_ip)
    gates, dropped, conflict = [], 0, 0
    for idx in groups:
        a, b = [g_ip[i] for i in idx], [g_vr[i] for i in idx]
        c = cosine(a, b)
        if mode == "sum":
            gate = torch.ones_like(c)
        elif mode == "gate":
            gate = (c >= 0).to(c.dtype)
        else:
            gate = c.clamp_min(0.0)
        conflict += int(c < 0)
        dropped += int(gate == 0)
        gates.append(gate)
        for i, x, y in zip(idx, a, b):
            update[i] = x + gate * y
    if any(u is None for u in update):
        raise InvalidParameterError("the cosine groups must cover every parameter")
    global_cos = cosine(g_ip, g_vr) if len(groups) > 1 else c
    logs = {"cos": float(global_cos), "gate": float(torch.stack(gates).mean()),
            "conflict": conflict / len(groups), "dropped": dropped / len(groups)}
    return update, logs  # type: ignore[return-value]


def layer_groups(module: nn.Module) -> list[list[int]]:
    """Indices of ``module``'s trainable parameters grouped by the module (layer) that owns them."""
    groups: dict[str, list[int]] = {}
    for i, (name, _) in enumerate((n, p) for n, p in module.named_parameters() if p.requires_grad):
        groups.setdefault(name.rsplit(".", 1)[0] if "." in name else "", []).append(i)
    return list(groups.values())


# -- strategies -------------------------------------------------------------------------------
def _adam(params: Sequence[nn.Parameter], lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """Adam, or AdamW (decoupled weight decay) when ``weight_decay`` > 0."""
    if weight_decay > 0:
        return torch.optim.AdamW(list(params), lr=lr, weight_decay=weight_decay)
    return torch.optim.Adam(list(params), lr=lr)


class EnhancerOnly(SingleNetwork):
    """Benchmark-i: the enhancer alone on L_IP = MSE(IP(X), target)."""

    name = "benchmark-i"

    def __init__(self, enhancer: nn.Module, lr: float = 1e-3) -> None:
        self.enhancer = enhancer
        super().__init__(enhancer, self._loss, _adam(enhancer.parameters(), lr), key="enhancer")

    @staticmethod
    def _loss(enhancer: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        loss = F.mse_loss(enhancer(batch["input"]), batch["target"])
        return loss, {"loss": loss.item(), "loss_ip": loss.item()}


class RecogniserOnly(SingleNetwork):
    """Benchmark-ii (``on="clean"``) / Benchmark-iii (``on="degraded"``): the recogniser alone."""

    def __init__(self, recogniser: nn.Module, task: str = "classification", on: str = "clean",
                 lr: float = 1e-3, weight_decay: float = 0.0) -> None:
        if on not in ("clean", "degraded"):
            raise InvalidParameterError(f"RecogniserOnly trains on 'clean' or 'degraded' images, got {on!r}")
        self.recogniser, self.task, self.on = recogniser, check_task(task, TASKS), on
        super().__init__(recogniser, self._loss, _adam(recogniser.parameters(), lr, weight_decay), key="recogniser",
                         name="benchmark-ii" if on == "clean" else "benchmark-iii")

    def _loss(self, recogniser: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        x = batch["image"] if self.on == "clean" else _upsample_to(batch["input"], batch["image"])
        loss = vr_loss(recogniser(x), batch, self.task)
        return loss, {"loss": loss.item(), "loss_vr": loss.item()}


class TaskDrivenEnhancement(Strategy):
    """Enhancer θ plus auxiliary recogniser(s) φ: Joint, Frozen-params and GradProm in one class.

    One forward pass; θ's two gradients are computed separately (``autograd.grad`` of L_IP with the
    graph retained, then ``backward`` of L_VR, which also gives φ its gradient ∇φ L_VR) and merged
    by :func:`combine_gradients`. With ``combiner="sum"`` and ``diagnostics=False`` a single
    backward pass is used instead (plain joint training, no cosine logged).

    Data-parallel (``torchrun``): the gate is not linear in the gradients, so averaging the
    per-rank *updates* would not be GradProm on the global batch. Each rank therefore averages
    G_IP and G_VR over ranks first (:func:`medtask.engine.distributed.all_reduce_tensors`, two
    all-reduces of θ's size), then combines: cosine, gate and update are those of the global batch,
    identical on every rank, and θ is listed in :meth:`reduced_parameters` so the loop does not
    average it again. φ's gradient ∇φ L_VR is a plain mean and is averaged by the loop.
    """

    def __init__(self, enhancer: nn.Module, recogniser: nn.Module | Auxiliary | Sequence[Auxiliary], *,
                 task: str = "classification", lam: float = 0.1, combiner: str = "gate", freeze_recogniser: bool = False,
                 per_layer: bool = False, diagnostics: bool = True, lr: float = 1e-3, lr_recogniser: float | None = None,
                 name: str | None = None) -> None:
        if combiner not in COMBINERS:
            raise InvalidParameterError(f"unknown gradient combiner {combiner!r}; choose one of {COMBINERS}")
        if not lam > 0:
            raise InvalidParameterError(f"the auxiliary weight lambda must be > 0 (0 is Benchmark-i), got {lam}")
        if combiner != "sum" and not diagnostics:
            raise InvalidParameterError("GradProm needs the separate gradients: diagnostics=False only with combiner='sum'")
        self.enhancer = enhancer
        self.auxiliaries = _as_auxiliaries(recogniser, task)
        self.lam, self.combiner, self.freeze = float(lam), combiner, bool(freeze_recogniser)
        self.per_layer, self.diagnostics = bool(per_layer), bool(diagnostics)
        self.name = name or {"sum": "frozen" if self.freeze else "joint", "gate": "gradprom",
                             "lemma": "gradprom-lemma"}[combiner]
        self.theta = [p for p in enhancer.parameters() if p.requires_grad]
        self.groups = layer_groups(enhancer) if self.per_layer else None
        self._opt = {"enhancer": _adam(self.theta, lr)}
        for aux in self.auxiliaries:
            if self.freeze:
                aux.module.requires_grad_(False)
                aux.module.eval()
            else:
                self._opt[f"recogniser_{aux.name}"] = _adam(aux.module.parameters(), lr_recogniser or lr)

    def modules(self) -> dict[str, nn.Module]:
        mods = {"enhancer": self.enhancer}
        if not self.freeze:
            mods.update({f"recogniser_{a.name}": a.module for a in self.auxiliaries})
        return mods

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._opt

    def reduced_parameters(self) -> list[torch.Tensor]:
        return list(self.theta) if self.diagnostics else []

    def train_mode(self) -> None:
        self.enhancer.train()
        for aux in self.auxiliaries:
            aux.module.train(not self.freeze)

    def losses(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """One forward pass: (L_IP, L_VR = Σ weight·loss, per-auxiliary losses)."""
        out = self.enhancer(batch["input"])
        if out.shape != batch["target"].shape:
            raise InvalidParameterError(
                f"enhancer output {tuple(out.shape)} does not match the target {tuple(batch['target'].shape)}: "
                "the enhancer's scale must equal the degradation's (build_enhancer(..., scale=degradation.scale))")
        l_ip = F.mse_loss(out, batch["target"])
        parts = {a.name: vr_loss(a.module(out), batch, a.task) for a in self.auxiliaries}
        l_vr = sum(a.weight * parts[a.name] for a in self.auxiliaries)
        return l_ip, l_vr, {f"loss_vr_{k}": v.item() for k, v in parts.items()} if len(parts) > 1 else {}

    def compute_gradients(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        l_ip, l_vr, extra = self.losses(batch)
        logs = {"loss": (l_ip + self.lam * l_vr).item(), "loss_ip": l_ip.item(), "loss_vr": l_vr.item(), **extra}
        if not self.diagnostics:  # plain joint training: one backward pass
            (l_ip + self.lam * l_vr).backward()
            if not self.freeze:  # φ gets ∇φ L_VR, not λ·∇φ L_VR
                for aux in self.auxiliaries:
                    for p in aux.module.parameters():
                        if p.grad is not None:
                            p.grad.div_(self.lam)
            return logs
        g_ip = torch.autograd.grad(l_ip, self.theta, retain_graph=True, allow_unused=True)
        l_vr.backward()  # θ.grad = ∇θ L_VR; φ.grad = ∇φ L_VR
        g_ip = [torch.zeros_like(p) if g is None else g for g, p in zip(g_ip, self.theta)]
        g_vr = [torch.zeros_like(p) if p.grad is None else p.grad * self.lam for p in self.theta]
        g_ip, g_vr = distributed.all_reduce_tensors(g_ip), distributed.all_reduce_tensors(g_vr)  # global batch's
        update, diag = combine_gradients(g_ip, g_vr, self.combiner, self.groups)
        for p, u in zip(self.theta, update):
            p.grad = u
        return {**logs, **diag}


STRATEGIES = ("benchmark-i", "benchmark-ii", "benchmark-iii", "joint", "frozen", "gradprom", "gradprom-lemma")


def make_strategy(name: str, *, enhancer: nn.Module | None = None,
                  recogniser: nn.Module | Auxiliary | Sequence[Auxiliary] | None = None,
                  task: str = "classification", lam: float = 0.1, lr: float = 1e-3,
                  lr_recogniser: float | None = None, per_layer: bool = False, diagnostics: bool = True) -> Strategy:
    """Build one of :data:`STRATEGIES` by name (``frozen`` expects a recogniser already trained on clean images).

    ``lr`` is the enhancer's learning rate (Adam); ``lr_recogniser`` the recogniser's (default ``lr``).
    """
    if name not in STRATEGIES:
        raise InvalidParameterError(f"unknown strategy {name!r}; choose one of {STRATEGIES}")
    if name != "benchmark-ii" and name != "benchmark-iii" and enhancer is None:
        raise InvalidParameterError(f"strategy {name!r} needs an enhancer")
    if name != "benchmark-i" and recogniser is None:
        raise InvalidParameterError(f"strategy {name!r} needs a recogniser")
    if name == "benchmark-i":
        return EnhancerOnly(enhancer, lr=lr)
    if name in ("benchmark-ii", "benchmark-iii"):
        return RecogniserOnly(recogniser, task, on="clean" if name == "benchmark-ii" else "degraded",
                              lr=lr_recogniser or lr)
    return TaskDrivenEnhancement(enhancer, recogniser, task=task, lam=lam, combiner=COMBINER_OF[name],
                                 freeze_recogniser=name == "frozen", per_layer=per_layer, diagnostics=diagnostics,
                                 lr=lr, lr_recogniser=lr_recogniser, name=name)
