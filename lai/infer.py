"""Inference: a trained run loaded for prediction, and the one forward pass from a raw batch to LAI.

:func:`load_trained` builds the model of a finished run folder (its ``model.pt``, read by
:func:`lai.checkpoint.read_trained`) on a device, in eval mode. :func:`forward` is the forward pass
every prediction takes, training's validation included: encode the raw batch (:mod:`lai.encode`), run
the model under bf16 autocast when asked, keep the row's prediction of LAI at t. :func:`predict_lai`
adds the step back to physical units (m2/m2), with the spread head's standard deviation where the model
has one; :func:`predict_batch` applies it to tiles of any size (padded to the U-Net's multiple and cropped
back), with NaN where Sentinel-1 at t is missing, and the deviation recalibrated (:mod:`lai.uncertainty`).
The maps written from it are :mod:`lai.products`'.
"""
from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from lai.checkpoint import read_trained, set_weights
from lai.config import EncodingConfig, ModelConfig, StageConfig
from lai.distributed import pick_device
from lai.encode import Encoded, denormalise_lai, encode_batch, mask_channels
from lai.facts import ROWS, variant_of
from lai.model import LAIModel
from lai.products import NODATA, MapOrigin
from lai.uncertainty import Calibration, read_calibration


def build_model(model: ModelConfig, encoding: EncodingConfig) -> LAIModel:
    """The model ``model`` describes, with the SCL-mask inputs ``encoding`` gives it (untrained)."""
    return LAIModel(model, mask_channels(encoding))


def training_bytes(model: ModelConfig, encoding: EncodingConfig, tile: int, batch: int) -> int:
    """About the memory of one fp32 training step of this model on ``batch`` tiles of ``tile`` pixels: the
    weights, their gradients and Adam's two moments (4 x the parameters), and every layer's output, kept for
    the backward pass, with its gradient (2 x the activations). Counted on PyTorch's meta device: nothing is
    allocated, so a configuration asking for any width can be checked before it is built. The activations are
    counted for one tile and scaled by ``batch`` (every layer's output is per sample: a batch of any size is counted
    without tensor sizes that overflow)."""
    with torch.device("meta"):
        net = build_model(model, encoding)
        size = (1, 1, tile, tile)
        x = Encoded(s1=torch.empty(1, 6, tile, tile), s2=torch.empty(1, 2, tile, tile),
                    masks=torch.empty(1, 2, mask_channels(encoding), tile, tile), season=torch.empty(1, 2),
                    target=torch.empty(size), target_valid=torch.empty(size, dtype=torch.bool),
                    past_cloudy=torch.empty(1, dtype=torch.bool), past_valid=torch.empty(1, 2, tile, tile, dtype=torch.bool))
        activations = 0

        def count(_module, _inputs, out):
            nonlocal activations
            if isinstance(out, torch.Tensor):
                activations += out.numel() * out.element_size()

        hooks = [m.register_forward_hook(count) for m in net.modules() if not list(m.children())]
        with torch.no_grad():
            net(x)
        for hook in hooks:
            hook.remove()
    return 4 * sum(p.numel() * p.element_size() for p in net.parameters()) + 2 * activations * batch


@dataclass
class Trained:
    """A trained model ready for inference, with the stage configuration it was trained with."""

    model: LAIModel
    config: StageConfig
    device: torch.device
    calibration: Calibration = field(default_factory=Calibration)  # of the spread head (calibration.json)
    weights: str = ""  # the model.pt it was read from (its maps name it)
    pixel_sizes: list = field(default_factory=list)  # of its training triplets, [[x, y], ...]; [] where unknown

    def other_pixel_size(self, transform) -> bool:
        """Whether the pixels of ``transform`` (a 6-tuple, a, b, c, d, e, f) differ by over 1 % in x or y from every
        pixel size the model was trained on (False where either is unknown): its maps are then extrapolation."""
        if transform is None or not self.pixel_sizes:
            return False
        x, y = abs(transform[0]), abs(transform[4])
        return not any(abs(x - a) <= 0.01 * a and abs(y - b) <= 0.01 * b for a, b in self.pixel_sizes)

    @property
    def enc(self) -> EncodingConfig:
        return self.config.encoding

    @property
    def row(self) -> str:
        return self.config.row

    @property
    def stage(self) -> str:
        """The name of its stage folder (``final_gated_seed1``; its row is ``final``), else its row."""
        return Path(self.weights).parent.name if self.weights else self.row

    @property
    def factor(self) -> int:
        return self.model.cfg.downsampling

    @functools.cached_property
    def weights_sha256(self) -> str | None:
        """The SHA-256 of the weights file (read once per model, however many maps name it); None without one."""
        return hashlib.sha256(Path(self.weights).read_bytes()).hexdigest() if self.weights else None

    def origin(self, data: str | Path, simulated: bool) -> MapOrigin:
        """What its maps of ``data`` say about where they come from (:class:`lai.products.MapOrigin`)."""
        spread = self.predicts_spread
        return MapOrigin(self.weights, self.row, str(Path(data).resolve()), simulated,
                         self.calibration.describe() if spread else None,
                         self.calibration.summary()["interval_half_width"]
                         if spread and self.calibration.recalibrated else None,
                         self.weights_sha256, variant_of(self.config),
                         lai_std_observed=self.calibration.summary()["observation_sd"] if spread else None)

    @property
    def reads_s1(self) -> bool:
        """Whether the model reads Sentinel-1 (every Table 1 row but the S2 encoder's): where it does not, missing
        radar leaves its maps whole."""
        return ROWS[self.row].reads_s1

    @property
    def predicts_spread(self) -> bool:
        """Whether the model predicts the standard deviation of its error (``model.uncertainty``)."""
        return self.model.spread_head is not None

    @property
    def bf16(self) -> bool:
        """Inference runs as the model's validation did: under bf16 autocast where its ``train.bf16`` says so
        (:func:`bf16_on`; the default ``auto``: on a GPU, not on a CPU)."""
        return bf16_on(self.config.train.bf16, self.device)


def bf16_on(setting: str, device: torch.device) -> bool:
    """Whether ``train.bf16`` (``on``, ``off`` or ``auto``: on a GPU) autocasts to bf16 on ``device``."""
    return setting == "on" or (setting == "auto" and device.type == "cuda")


def load_trained(run: str | Path, device: str | torch.device = "auto") -> Trained:
    """The model of one finished run folder (``model.pt``, and ``calibration.json`` where the spread head was
    recalibrated), in eval mode on ``device`` (``auto``: a GPU if any)."""
    import warnings

    device = pick_device(str(device))
    state = read_trained(run)
    config: StageConfig = state["config"]
    _check_stage_row(Path(state["path"]), config.row)
    # the file's weights checked against the model its configuration describes before that model is allocated (a
    # file can ask for any width)
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: copying into a meta tensor is a no-op (only the shapes are checked)
        set_weights(build_model(config.model, config.encoding), state["model"], state["path"])
    model = build_model(config.model, config.encoding)
    set_weights(model, state["model"], state["path"])
    return Trained(model.to(device).eval(), config, device, read_calibration(Path(state["path"]).parent),
                   str(Path(state["path"]).resolve()), state["pixel_sizes"])


def _check_stage_row(weights: Path, row: str) -> None:
    """Refuse a weights file of row ``row`` in the folder of a stage of another row (its config.yaml says which):
    its scores and calibration would be written there under the other row's name."""
    from lai.errors import RunFolderError
    from lai.facts import STAGE_CONFIG_FILE
    from lai.records import read_yaml_mapping

    config_file = weights.parent / STAGE_CONFIG_FILE
    if not config_file.is_file():
        return
    model = read_yaml_mapping(config_file, "stage configuration", error=RunFolderError).get("model")
    stage_row = model.get("row") if isinstance(model, dict) else None
    if stage_row is not None and stage_row != row:
        raise RunFolderError(f"{weights}: holds a model of row {row}, but its folder is a stage of row {stage_row} "
                             f"({config_file}); put the file back in its own stage folder")


def to_channels_last(x: Encoded) -> Encoded:
    """The image inputs of ``x`` in channels_last memory order (what a channels_last model runs fastest on).

    The masks (B, T, C, H, W) are stored (B, H, W, T, C), so that ``masks.flatten(1, 2)``, the mask
    embedding's input, is a channels_last view rather than a channels-first copy that each convolution
    (forward and weight gradient) would convert again."""
    x.s1 = x.s1.contiguous(memory_format=torch.channels_last)
    x.s2 = x.s2.contiguous(memory_format=torch.channels_last)
    x.masks = x.masks.permute(0, 3, 4, 1, 2).contiguous().permute(0, 3, 4, 1, 2)  # no copy if already so
    return x


@torch.no_grad()
def forward(model: torch.nn.Module, raw: dict, enc: EncodingConfig, bf16: bool,
            channels_last: bool = False) -> tuple[Encoded, torch.Tensor]:
    """The encoded batch and the row's prediction of LAI at t (B, 1, H, W), normalised units, float32.

    ``raw`` as the loader yields it (s1, lai, scl, doy_target, doy_from on the model's device)."""
    x, out = _outputs(model, raw, enc, bf16, channels_last)
    return x, LAIModel.prediction(out).float()


def _outputs(model, raw: dict, enc: EncodingConfig, bf16: bool, channels_last: bool = False) -> tuple[Encoded, dict]:
    x = encode_batch(raw, enc, channels_last)
    if channels_last:
        x = to_channels_last(x)
    with torch.autocast(x.s1.device.type, dtype=torch.bfloat16, enabled=bf16):
        out = model(x)
    return x, out


@torch.no_grad()
def predict_lai(model: torch.nn.Module, raw: dict, enc: EncodingConfig, bf16: bool
                ) -> tuple[Encoded, torch.Tensor, torch.Tensor | None]:
    """The encoded batch, LAI at t in m2/m2 (B, H, W) and, from a model with a spread head
    (``model.uncertainty``), its predicted standard deviation in m2/m2 (B, H, W; else None), uncalibrated."""
    x, out = _outputs(model, raw, enc, bf16)
    spread = LAIModel.spread(out)
    lai = denormalise_lai(LAIModel.prediction(out).float()[:, 0], enc)
    return x, lai, None if spread is None else denormalise_lai(spread[:, 0], enc)


def _pad(x: torch.Tensor, factor: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    ph, pw = -h % factor, -w % factor
    if not (ph or pw):
        return x
    flat = x.reshape(-1, 1, h, w).float()
    padded = torch.nn.functional.pad(flat, (0, pw, 0, ph), mode="replicate")
    return padded.reshape(*x.shape[:-2], h + ph, w + pw).to(x.dtype)


def predict_batch(trained: Trained, s1, lai, scl, doy_target, doy_from
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """LAI at t (B, H, W) float32, the observed flag (B, H, W) uint8 and the model's standard deviation (B, H, W)
    float32, calibrated (:attr:`Trained.calibration`; None from a model without a spread head), for one batch
    of any tile size.

    Inputs as the loader yields them: s1 (B, 3, 2, H, W) dB, lai (B, 3, H, W), scl (B, 3, H, W),
    day of year of t and of t-2 (B,). Tiles are padded (edge values repeated) to the U-Net's multiple
    and cropped back. LAI and its deviation are NaN (nodata) where S1 at t is not finite (models that read S1).
    """
    dev = trained.device
    h, w = s1.shape[-2:]
    raw = {
        "s1": _pad(torch.as_tensor(s1, device=dev), trained.factor),
        "lai": _pad(torch.as_tensor(lai, device=dev), trained.factor),
        "scl": _pad(torch.as_tensor(scl, device=dev), trained.factor),
        "doy_target": torch.as_tensor(doy_target, device=dev),
        "doy_from": torch.as_tensor(doy_from, device=dev),
    }
    x, lai_t, sd = predict_lai(trained.model, raw, trained.enc, trained.bf16)
    lai_t = lai_t[:, :h, :w].cpu().numpy().astype(np.float32)
    observed = x.target_valid[:, 0, :h, :w].cpu().numpy().astype(np.uint8)
    missing = ~np.isfinite(np.asarray(s1)[:, 2]).all(axis=1) if trained.reads_s1 else np.zeros(lai_t.shape, bool)
    lai_t[missing] = NODATA
    if sd is not None:
        past_clear = x.past_valid[:, :, :h, :w].sum(1).cpu().numpy()
        sd = trained.calibration.std(sd[:, :h, :w].cpu().numpy().astype(np.float32), past_clear, observed)
        sd[missing] = NODATA
    return lai_t, observed, sd


def clamp_lai(lai: np.ndarray) -> tuple[np.ndarray, int]:
    """Predicted LAI made physical for the products (maps, not Table 1's scoring): clamped in place to the
    layout's plausible range (``lai.pixels.LAI_RANGE``, the reader's check too); returns it and how many finite
    pixels were moved (NaN, nodata, stays)."""
    from lai.pixels import LAI_RANGE

    low, high = LAI_RANGE
    with np.errstate(invalid="ignore"):
        outside = (lai < low) | (lai > high)
    np.clip(lai, low, high, out=lai)
    return lai, int(outside.sum())
