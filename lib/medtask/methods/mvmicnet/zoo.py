"""Study A's zoo entries: the base networks its chapters start from.

Study A
-------
``mbt2018-mean-{cvc,bccd}-q{1..4}``  MeanScaleHyperprior (N=64, M=96) at CompressAI's quality 1–4
                          lambdas, one family per task dataset (the paper trains its codecs per task):
                          CVC-ColonDB train frames (block split, 256×288) for segmentation, BCCD train
                          images (320×424) for detection; random 128-px crops, flips. q4 is trained
                          from scratch; q1–q3 are fine-tuned from q4, standard practice for a family
                          of rate points. (A first family trained on both datasets at once spent its
                          capacity on BCCD's texture: 26.5 dB at 0.60 bpp on CVC-ColonDB after 4,000
                          steps, where HEVC-intra reaches 37 dB at 0.19 bpp.)
``cheng2020-anchor-{cvc,bccd}-q{1..4}``  Cheng2020-Anchor (N=64), the same data, schedule and fine-tuning.
``erfnet-cvc``            ERFNet ×0.5 for polyp segmentation on CVC-ColonDB's block split at
                          256×288 (rotation, flips, colour jitter, CE + Dice) on 160-px zoomed crops
                          (0.6–2.5×), half of them centred on the polyp. The test videos film their
                          polyps close up (15 % of the frame against 5 % in training). Trained with
                          zooms up to 1.25× the network scored Dice 0.09 on the test frames (0.48 on
                          them shown at half size); with zooms up to 3× about the frame's centre,
                          which crop off-centre polyps exactly when they would be enlarged, 0.17
                          (predicting 2.6 % foreground where the truth is 15 %).
``erfnet-cvc-random``     the same network on a random frame split, which lets neighbouring,
                          near-duplicate frames fall on both sides (to show the leak).
``faster-rcnn-bccd``      Faster R-CNN with a MobileNetV3-Large-FPN backbone (chapter A2's CPU detector, its
                          reduced RPN budgets), randomly initialised (nothing can be downloaded), on BCCD's
                          official train images at 320×424; flips (boxes flipped with them), colour jitter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from medtask.data.augment import FOREGROUND_ZOOM, color_jitter, compose, flips, foreground_zoom, random_crops
from medtask.engine.batches import RandomBatches, collate
from medtask.engine.loop import Strategy
from medtask.errors import InvalidParameterError
from medtask.methods.mvmicnet.codecs.bitstream import PAD_MULTIPLE, pad_to_multiple
from medtask.methods.mvmicnet.codecs.learned import ZOO_LAMBDAS, build_codec, codec_spec
from medtask.methods.mvmicnet.evaluation import task_scores
from medtask.methods.mvmicnet.strategies import SCALE_255, CodecMSEStrategy, TaskStrategy
from medtask.metrics.image import psnr
from medtask.nn.detection import detector_for_frames
from medtask.nn.erfnet import build_erfnet
from medtask.zoo.registry import Entry, load_item, register

#: Study A's working sizes (H, W): CVC-ColonDB's 500×574 frames and BCCD's 480×640 images,
#: short side 256 and 320 px, aspect kept to within 2 % and sides multiples of 8.
CVC_SIZE = (256, 288)
BCCD_SIZE = (320, 424)


def _chunks(ds, batch_size: int):
    for i in range(0, len(ds), batch_size):
        yield collate([ds[j] for j in range(i, min(i + batch_size, len(ds)))])


# -- learned codecs ------------------------------------------------------------------------------
@dataclass
class CodecEntry(Entry):
    """A learned codec trained with ``L = R + λ·255²·MSE`` on crops of Study A's training images."""

    arch: str = "mbt2018-mean"
    N: int = 64
    M: int | None = 96
    quality: int = 4

    def __post_init__(self) -> None:
        self.hyperparameters = {"lambda1": ZOO_LAMBDAS[self.quality], "lr": 1e-4 if self.parent else 3e-4,
                                "aux_lr": 1e-3, "batch_size": 8, "crop": 128, "augment": ["random_crop", "flips"],
                                "lr_schedule": "cosine", "lr_min_factor": 0.05, "seed": 0, **self.hyperparameters}
        if self.hyperparameters["crop"] % PAD_MULTIPLE:
            # A crop that is not a multiple of the codec's total stride gets padded before coding; the
            # padded border costs bits but no distortion, and the codec learns to neglect the bottom and
            # right edges of every image (seen: 96-px crops cost 20 dB in the last 64 rows).
            raise InvalidParameterError(f"zoo entry {self.name}: codec training crops must be multiples of "
                                        f"{PAD_MULTIPLE} px, got {self.hyperparameters['crop']}")

    def architecture(self) -> dict[str, Any]:
        return codec_spec(self.arch, self.N, self.M).as_dict()

    def build(self) -> nn.Module:
        return build_codec(self.arch, N=self.N, M=self.M)

    def strategy(self, model: nn.Module, device: torch.device) -> Strategy:
        hp = self.hyperparameters
        return CodecMSEStrategy(model, hp["lambda1"], lr=hp["lr"], aux_lr=hp["aux_lr"], device=device)

    def batches(self, device: torch.device):
        hp = self.hyperparameters
        samples = [{"image": s["image"], "id": s["id"]} for d in self.data for s in load_item(d, "train")]
        return RandomBatches(samples, hp["batch_size"], seed=hp["seed"],
                             augment=compose(random_crops(hp["crop"]), flips), device=device)

    @torch.inference_mode()
    def evaluate(self, model: nn.Module, split: str, device: torch.device) -> dict[str, float]:
        """Mean PSNR and likelihood bpp per image (rounded latents), and the RD loss, over every dataset."""
        model.eval()
        psnr_all, bpp, mse_all = [], [], []
        out: dict[str, float] = {}
        for d in self.data:
            p_d, b_d = [], []
            for batch in _chunks(load_item(d, split), 8):
                x = batch["image"].to(device)
                h, w = x.shape[-2:]
                res = model(pad_to_multiple(x))
                x_hat = res["x_hat"][..., :h, :w]
                bits = sum(torch.log2(lk).flatten(1).sum(1) for lk in res["likelihoods"].values())
                mse = ((x_hat.clamp(0, 1) - x) ** 2).flatten(1).mean(1)
                p_d += psnr(x_hat, x).tolist()
                b_d += (-bits / (h * w)).tolist()
                mse_all += mse.tolist()
            out[f"psnr_{d['dataset']}"] = sum(p_d) / len(p_d)
            out[f"bpp_{d['dataset']}"] = sum(b_d) / len(b_d)
            psnr_all += p_d
            bpp += b_d
        out["psnr"] = sum(psnr_all) / len(psnr_all)
        out["bpp"] = sum(bpp) / len(bpp)
        out["rd_loss"] = out["bpp"] + self.hyperparameters["lambda1"] * SCALE_255 * sum(mse_all) / len(mse_all)
        return out

    def prepare_for_storage(self, model: nn.Module) -> nn.Module:
        model.update(force=True)
        return model


#: The training data of each codec family, by the tag in its entries' names.
STUDY_A_CODEC_DATA: dict[str, list[dict[str, Any]]] = {
    "cvc": [{"dataset": "CVC-ColonDB", "size": list(CVC_SIZE), "split_rule": "blocks"}],
    "bccd": [{"dataset": "BCCD", "size": list(BCCD_SIZE)}],
}


def codec_entry_name(arch: str, data_tag: str, quality: int) -> str:
    """The zoo name of a Study A codec: ``<arch>-<data tag>-q<quality>``, e.g. ``mbt2018-mean-cvc-q4``."""
    return f"{arch}-{data_tag}-q{quality}"


def _codec_entry(arch: str, tag: str, quality: int, parent: str | None, steps: int, N: int, M: int | None, *,
                 data: list[dict[str, Any]] | None = None, eval_every: int | None = None,
                 hyperparameters: dict[str, Any] | None = None, smoke: bool = False) -> CodecEntry:
    title = {"mbt2018-mean": "MBT2018-Mean (mean-scale hyperprior)",
             "cheng2020-anchor": "Cheng2020-Anchor (residual blocks, autoregressive context)"}[arch]
    widths = f"N={N}" + (f", M={M}" if M else "")
    data = data or STUDY_A_CODEC_DATA[tag]
    return CodecEntry(
        name=codec_entry_name(arch, tag, quality), study="A",
        description=(f"{title}, {widths}, λ1={ZOO_LAMBDAS[quality]} (CompressAI quality {quality}), "
                     f"{data[0]['dataset']} train images"
                     + (f"; fine-tuned from {parent}" if parent else "; trained from scratch")),
        steps=steps, eval_every=eval_every or (1000 if parent is None else 400), metric="rd_loss",
        higher_is_better=False, parent=parent, data=[dict(d) for d in data], arch=arch, N=N, M=M, quality=quality,
        hyperparameters=dict(hyperparameters or {}), smoke=smoke)


for _arch, _N, _M in (("mbt2018-mean", 64, 96), ("cheng2020-anchor", 64, None)):
    for _tag in STUDY_A_CODEC_DATA:
        register(_codec_entry(_arch, _tag, 4, None, 12000, _N, _M))
        for _q in (3, 2, 1):
            register(_codec_entry(_arch, _tag, _q, codec_entry_name(_arch, _tag, 4), 2000, _N, _M))

#: The smoke-test zoo (phantom polyps at 64 px, the smoke profile's widths, a few steps): lets the
#: tests run chapter A1 with ``init="zoo"``; trained into a temporary zoo by the tests, never committed.
SMOKE_DATA = [{"dataset": "phantom-polyp", "size": [64, 64]}]
for _arch, _N, _M in (("mbt2018-mean", 8, 8), ("cheng2020-anchor", 8, None)):
    register(_codec_entry(_arch, "phantom", 4, None, 4, _N, _M, data=SMOKE_DATA, eval_every=2,
                          hyperparameters={"crop": 64, "batch_size": 4}, smoke=True))
    register(_codec_entry(_arch, "phantom", 3, codec_entry_name(_arch, "phantom", 4), 2, _N, _M, data=SMOKE_DATA,
                          eval_every=2, hyperparameters={"crop": 64, "batch_size": 4}, smoke=True))


# -- segmentation -----------------------------------------------------------------------------------
@dataclass
class SegmenterEntry(Entry):
    """ERFNet trained on CVC-ColonDB originals with CE + soft Dice and strong augmentation."""

    width: float = 0.5
    num_classes: int = 2

    def __post_init__(self) -> None:
        self.hyperparameters = {"lr": 1e-3, "batch_size": 8, "crop": 160, "lr_schedule": "cosine",
                                "lr_min_factor": 0.02, "seed": 0, "loss": "cross-entropy + soft Dice",
                                "augment": FOREGROUND_ZOOM, **self.hyperparameters}

    def architecture(self) -> dict[str, Any]:
        return {"arch": "erfnet", "width": self.width, "num_classes": self.num_classes, "in_channels": 3}

    def build(self) -> nn.Module:
        return build_erfnet(self.num_classes, 3, self.width)

    def strategy(self, model: nn.Module, device: torch.device) -> Strategy:
        return TaskStrategy(model, "segmentation", lr=self.hyperparameters["lr"], device=device)

    def batches(self, device: torch.device):
        hp = self.hyperparameters
        return RandomBatches(load_item(self.data[0], "train"), hp["batch_size"], seed=hp["seed"],
                             augment=foreground_zoom(hp["crop"], hp["augment"]), device=device)

    def evaluate(self, model: nn.Module, split: str, device: torch.device) -> dict[str, float]:
        """Dataset-level polyp Dice and mIoU, and the mean of per-frame Dice (PraNet's 'mean Dice')."""
        ds = load_item(self.data[0], split)
        scores = task_scores(model, "segmentation", ds, ds, self.num_classes, device)
        return {k: scores[k] for k in ("dice", "miou", "iou_fg", "mean_dice")}


def _erfnet_entry(name: str, split_rule: str, description: str) -> SegmenterEntry:
    return SegmenterEntry(
        name=name, study="A", description=description, steps=4000, eval_every=400, metric="dice",
        higher_is_better=True, data=[{"dataset": "CVC-ColonDB", "size": list(CVC_SIZE), "split_rule": split_rule}])


register(SegmenterEntry(
    name="erfnet-phantom", study="A", description="ERFNet ×0.25 on phantom polyps (smoke tests only)", steps=4,
    eval_every=2, metric="dice", higher_is_better=True, data=[dict(d) for d in SMOKE_DATA], width=0.25,
    hyperparameters={"crop": 64, "batch_size": 4}, smoke=True))
register(_erfnet_entry("erfnet-cvc", "blocks",
                       "ERFNet ×0.5, polyp segmentation on CVC-ColonDB originals, block split (unseen videos)"))
register(_erfnet_entry("erfnet-cvc-random", "random",
                       "ERFNet ×0.5 on CVC-ColonDB with a random frame split (near-duplicate frames leak "
                       "across the split): shows how much the leak lifts the score"))


# -- detection --------------------------------------------------------------------------------------
#: chapter A2's CPU detector budgets (RPN proposals and sampled boxes per image): they change speed,
#: not the weights' shapes, so a chapter may load the entry into a detector with other budgets
DETECTOR_OPTIONS = {"rpn_pre_nms_top_n_train": 300, "rpn_post_nms_top_n_train": 300, "rpn_pre_nms_top_n_test": 150,
                    "rpn_post_nms_top_n_test": 150, "box_batch_size_per_image": 128, "rpn_batch_size_per_image": 128}


@dataclass
class DetectorEntry(Entry):
    """Faster R-CNN trained on Study A's detection images (torchvision's summed RPN + ROI-head losses)."""

    backbone: str = "mobilenet-v3-fpn"
    num_classes: int = 3  # foreground classes

    def __post_init__(self) -> None:
        self.hyperparameters = {"lr": 3e-4, "batch_size": 4, "lr_schedule": "cosine", "lr_min_factor": 0.02,
                                "seed": 0, "loss": "Faster R-CNN (RPN + ROI heads)",
                                "augment": {"flips": "h+v (boxes with them)", "color_jitter": 0.1},
                                "detector_options": dict(DETECTOR_OPTIONS), **self.hyperparameters}

    def architecture(self) -> dict[str, Any]:
        h, w = self.data[0]["size"]
        return {"arch": "faster-rcnn", "backbone": self.backbone, "num_classes": self.num_classes,
                "min_size": min(h, w), "max_size": max(h, w)}

    def build(self) -> nn.Module:
        return detector_for_frames(self.num_classes, self.backbone, self.data[0]["size"],
                                   **self.hyperparameters["detector_options"])

    def strategy(self, model: nn.Module, device: torch.device) -> Strategy:
        return TaskStrategy(model, "detection", lr=self.hyperparameters["lr"], device=device)

    def batches(self, device: torch.device):
        hp = self.hyperparameters
        jitter = hp["augment"]["color_jitter"]
        return RandomBatches(load_item(self.data[0], "train"), hp["batch_size"], seed=hp["seed"],
                             augment=compose(flips, color_jitter(jitter, jitter, jitter)), device=device)

    def evaluate(self, model: nn.Module, split: str, device: torch.device) -> dict[str, float]:
        """COCO mAP@[.5:.95], AP50 and AP75 (torchmetrics) over the split's images."""
        ds = load_item(self.data[0], split)
        return task_scores(model, "detection", ds, ds, self.num_classes + 1, device, batch_size=4)


register(DetectorEntry(
    name="faster-rcnn-phantom", study="A", description="Faster R-CNN (MobileNetV3-FPN) on phantom boxes (smoke tests only)",
    steps=4, eval_every=2, metric="ap50", higher_is_better=True, data=[{"dataset": "phantom-boxes", "size": [64, 64]}],
    hyperparameters={"batch_size": 2}, smoke=True))
register(DetectorEntry(
    name="faster-rcnn-bccd", study="A",
    description="Faster R-CNN, MobileNetV3-Large-FPN backbone from random weights, BCCD train images at 320×424",
    steps=3000, eval_every=300, metric="ap50", higher_is_better=True,
    data=[{"dataset": "BCCD", "size": list(BCCD_SIZE)}]))
