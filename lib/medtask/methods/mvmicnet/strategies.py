"""Study A strategies: rate–distortion training of a codec, MVMICNet's two stages, task baselines.

All of them run through :func:`medtask.engine.fit`:

- :class:`CodecMSEStrategy`        ``L = R + λ1·255²·MSE(x, x̂)``; CompressAI's auxiliary (quantile)
                                   loss on its own optimiser.
- :class:`JointStrategy`           MVMICNet stage 1: ``L = R + λ1·255²·MSE(x, x̂) + λ2·s·L_task(T(x̂), y)``,
                                   codec and task network trained jointly (``s`` = ``task_scale``).
- :class:`FrozenCodecTaskStrategy` MVMICNet stage 2: the codec frozen (eval mode), the task network
                                   fine-tuned on its decoded images (bpp/PSNR unchanged).
- :class:`TaskStrategy`            the task network alone on original images (the baselines' task net).

``R`` is the likelihood bpp of the entropy model (noisy quantisation while training).
``task_scale`` (default 255², the same factor as the distortion term) is our reading of the paper:
with the task network's own mean loss and no scale, the paper's λ2 = 1e-4 would make the task
term ~1e-5 of the loss and MVMICNet indistinguishable from its MSE baseline, while Table 4's
PSNR collapse at λ2 = 0.1 says the task term dominates there. Chapters state the value used.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medtask.engine.loop import Strategy, load_state_into, read_checkpoint
from medtask.engine.strategies import SingleNetwork
from medtask.errors import InvalidParameterError
from medtask.methods.mvmicnet.codecs.bitstream import pad_to_multiple, to_rgb
from medtask.methods.mvmicnet.codecs.learned import bpp_from_likelihoods, check_lambda, parameter_groups
from medtask.nn.losses import check_task, recognition_loss

SCALE_255 = 255.0 ** 2


# -- task adapters ----------------------------------------------------------------------------
class TaskAdapter:
    """How a task network turns (images, batch) into its training loss."""

    name = "task"

    def loss(self, net: nn.Module, images: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        raise NotImplementedError


class SegmentationTask(TaskAdapter):
    """Cross-entropy plus soft Dice of the foreground classes (the usual polyp-segmentation loss).

    Plain cross-entropy lets a briefly trained network predict background everywhere (polyps cover
    ~10 % of a CVC-ColonDB frame); the Dice term counteracts the imbalance.
    """

    name = "segmentation"

    def __init__(self, dice_weight: float = 1.0) -> None:
        self.dice_weight = float(dice_weight)

    def loss(self, net: nn.Module, images: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        return recognition_loss(net(images), batch["mask"], "segmentation", self.dice_weight)


class DetectionTask(TaskAdapter):
    """torchvision detection loss: the sum of Faster R-CNN's loss dict (RPN + ROI heads)."""

    name = "detection"

    def loss(self, net: nn.Module, images: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        boxes, labels = batch["boxes"], batch["labels"]
        if torch.is_tensor(boxes):  # same number of boxes in every sample got stacked by collate
            boxes, labels = list(boxes.unbind(0)), list(labels.unbind(0))
        targets = [{"boxes": b.to(images.device).float().reshape(-1, 4), "labels": lb.to(images.device).long()}
                   for b, lb in zip(boxes, labels)]
        losses = net(list(images.unbind(0)), targets)
        return sum(losses.values())


#: the tasks MVMICNet's codec is trained for (of :data:`medtask.data.io.TASKS`)
TASKS = ("segmentation", "detection")


def task_adapter(task: str) -> TaskAdapter:
    """``"segmentation"`` or ``"detection"`` -> its :class:`TaskAdapter`."""
    return SegmentationTask() if check_task(task, TASKS) == "segmentation" else DetectionTask()


# -- helpers ----------------------------------------------------------------------------------
def codec_forward(codec: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad, run the codec, crop: (x̂ ``[B,C,H,W]``, likelihood bpp of the batch)."""
    b, c, h, w = x.shape
    out = codec(pad_to_multiple(to_rgb(x)))
    x_hat = out["x_hat"][..., :h, :w]
    if c == 1:
        x_hat = x_hat.mean(1, keepdim=True)
    return x_hat, bpp_from_likelihoods(out["likelihoods"], b * h * w)


def check_lambda2(value: float) -> float:
    """λ2 must be >= 0 and at most 10 (larger makes the rate and distortion terms irrelevant)."""
    v = float(value)
    if not (0.0 <= v <= 10.0):
        raise InvalidParameterError(f"lambda2={value!r} is outside the meaningful range [0, 10]; the paper uses "
                                    "0.1, 1e-3, 1e-4, 1e-5")
    return v


def load_modules(path, modules: dict[str, nn.Module]) -> None:
    """Load the named modules' weights from a :func:`fit` checkpoint (optimisers are not restored)."""
    state = read_checkpoint(path)
    for k, m in modules.items():
        if k not in state["modules"]:
            raise InvalidParameterError(f"checkpoint {path} has no module {k!r} (it has {list(state['modules'])}); "
                                        "load the module it was trained for, or delete it and retrain")
        load_state_into(path, "network", k, m, state["modules"][k])


def _images(batch: dict[str, Any], device: torch.device) -> torch.Tensor:
    x = batch["image"]
    if isinstance(x, list):
        raise InvalidParameterError("a batch's images differ in size; resize the dataset (load(..., size=...))")
    return x.to(device)


def rate_distortion(codec: nn.Module, x: torch.Tensor, lambda1: float) -> dict[str, torch.Tensor]:
    """The rate–distortion loss ``R + λ1·255²·MSE(x, x̂)`` of a batch, with its terms and ``x_hat``."""
    x_hat, bpp = codec_forward(codec, x)
    mse = F.mse_loss(x_hat, x)
    return {"loss": bpp + lambda1 * SCALE_255 * mse, "bpp": bpp, "mse": mse, "x_hat": x_hat}


def _aux_backward(codec: nn.Module) -> float:
    """Back-propagate CompressAI's auxiliary (quantile) loss; return its value."""
    aux = codec.aux_loss()
    aux.backward()
    return aux.item()


def _codec_optimizers(codec: nn.Module, lr: float, aux_lr: float) -> dict[str, torch.optim.Optimizer]:
    main, aux = parameter_groups(codec)
    return {"codec": torch.optim.Adam(main, lr=lr), "aux": torch.optim.Adam(aux, lr=aux_lr)}


# -- strategies -------------------------------------------------------------------------------
class CodecMSEStrategy(Strategy):
    """Rate–distortion training ``L = R + λ1·255²·MSE``; CompressAI's aux loss on its own optimiser."""

    name = "codec-mse"

    def __init__(self, codec: nn.Module, lambda1: float, *, lr: float = 1e-4, aux_lr: float = 1e-3,
                 device: str | torch.device = "cpu") -> None:
        self.codec = codec.to(device)
        self.lambda1 = check_lambda(lambda1, "lambda1")
        self.device = torch.device(device)
        self._opt = _codec_optimizers(self.codec, lr, aux_lr)

    def modules(self) -> dict[str, nn.Module]:
        return {"codec": self.codec}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._opt

    def compute_gradients(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        rd = rate_distortion(self.codec, _images(batch, self.device), self.lambda1)
        rd["loss"].backward()
        aux = _aux_backward(self.codec)
        return {"loss": rd["loss"].item(), "bpp": rd["bpp"].item(), "mse": rd["mse"].item(), "aux": aux}


class JointStrategy(Strategy):
    """MVMICNet stage 1: codec + task network, ``L = R + λ1·255²·MSE + λ2·task_scale·L_task(T(x̂), y)``."""

    name = "mvmicnet-stage1"

    def __init__(self, codec: nn.Module, task_net: nn.Module, task: TaskAdapter | str, lambda1: float,
                 lambda2: float, *, lr: float = 1e-4, task_lr: float = 1e-4, aux_lr: float = 1e-3,
                 task_scale: float = SCALE_255, device: str | torch.device = "cpu") -> None:
        self.codec = codec.to(device)
        self.task_net = task_net.to(device)
        self.task = task_adapter(task) if isinstance(task, str) else task
        self.lambda1 = check_lambda(lambda1, "lambda1")
        self.lambda2 = check_lambda2(lambda2)
        if not task_scale > 0:
            raise InvalidParameterError(f"task_scale must be positive, got {task_scale}")
        self.task_scale = float(task_scale)
        self.device = torch.device(device)
        self._opt = _codec_optimizers(self.codec, lr, aux_lr)
        self._opt["task"] = torch.optim.Adam(self.task_net.parameters(), lr=task_lr)

    def modules(self) -> dict[str, nn.Module]:
        return {"codec": self.codec, "task": self.task_net}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return self._opt

    def loss_terms(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The three terms and the total (differentiable), for tests and logging."""
        rd = rate_distortion(self.codec, _images(batch, self.device), self.lambda1)
        task = self.task.loss(self.task_net, rd["x_hat"], batch)
        total = rd["loss"] + self.lambda2 * self.task_scale * task
        return {"loss": total, "bpp": rd["bpp"], "mse": rd["mse"], "task": task}

    def compute_gradients(self, batch: dict[str, Any], step: int) -> dict[str, float]:
        terms = self.loss_terms(batch)
        terms["loss"].backward()
        aux = _aux_backward(self.codec)
        return {**{k: v.item() for k, v in terms.items()}, "aux": aux}


class TaskStrategy(SingleNetwork):
    """The task network trained alone on original images (what the baselines are evaluated with)."""

    name = "task"

    def __init__(self, task_net: nn.Module, task: TaskAdapter | str, *, lr: float = 1e-3,
                 device: str | torch.device = "cpu") -> None:
        self.task_net = task_net.to(device)
        self.task = task_adapter(task) if isinstance(task, str) else task
        self.device = torch.device(device)
        super().__init__(self.task_net, self._loss, torch.optim.Adam(self.task_net.parameters(), lr=lr), key="task")

    def inputs(self, batch: dict[str, Any]) -> torch.Tensor:
        """The images the task network learns from: the originals."""
        return _images(batch, self.device)

    def _loss(self, net: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        loss = self.task.loss(net, self.inputs(batch), batch)
        return loss, {"loss": loss.item()}


class FrozenCodecTaskStrategy(TaskStrategy):
    """MVMICNet stage 2: task network fine-tuned on the frozen codec's eval-mode reconstructions.

    For ``mbt2018-mean`` the eval-mode reconstruction is bit-exact with decoding the real
    bitstream (tested); the codec is not trained and stays in eval mode.
    """

    name = "mvmicnet-stage2"

    def __init__(self, codec: nn.Module, task_net: nn.Module, task: TaskAdapter | str, *, lr: float = 1e-4,
                 device: str | torch.device = "cpu") -> None:
        super().__init__(task_net, task, lr=lr, device=device)
        self.codec = codec.to(device).eval()
        for p in self.codec.parameters():
            p.requires_grad_(False)

    def train_mode(self) -> None:
        self.task_net.train()
        self.codec.eval()

    def inputs(self, batch: dict[str, Any]) -> torch.Tensor:
        """The frozen codec's reconstructions of the batch (what stage 2 fine-tunes on)."""
        with torch.no_grad():
            x_hat, _ = codec_forward(self.codec, _images(batch, self.device))
        return x_hat.clamp(0, 1)
