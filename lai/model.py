"""U-Net encoders, fusion decoder and heads: one configurable model for every Table 1 row.

``ROWS`` maps a row name to the encoders it uses (with or without SCL masks and
seasonality) and whether the fusion decoder sits on top. An input a row does
not use is dropped (fewer input channels), never zeroed.
"""
from __future__ import annotations

import math
from contextlib import nullcontext

import torch
from torch import nn

from lai.config import ModelConfig
from lai.encode import Encoded
from lai.facts import LOG_VAR, ROWS, UPSAMPLING, EncoderSpec

# Below this many channels, a CPU training step runs BatchNorm on a channels-first copy of a channels_last
# input: PyTorch's CPU BatchNorm backward in channels_last order vectorises over channels and is many times
# slower than channels-first at 8 channels; from 16 channels on the two copies cost more than they save
# (`benchmarks/cpu_step.py --batchnorm 8`, variant channels_last+bn_cl; figures in docs/gpu.md).
CHANNELS_FIRST_BATCHNORM_BELOW = 16


def is_channels_last(x: torch.Tensor) -> bool:
    """Whether ``x`` is stored in channels_last order and not also channels-first (which 1x1 maps are)."""
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


class BatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` (same parameters, buffers and state-dict keys) that, training on the CPU with
    fewer than :data:`CHANNELS_FIRST_BATCHNORM_BELOW` channels, normalises a channels-first copy of a
    channels_last input and returns the result in channels_last order."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if (self.training and x.device.type == "cpu" and self.num_features < CHANNELS_FIRST_BATCHNORM_BELOW
                and x.dim() == 4 and is_channels_last(x)):
            return super().forward(x.contiguous()).contiguous(memory_format=torch.channels_last)
        return super().forward(x)


def conv_block(c_in: int, c_out: int, n_convs: int) -> nn.Sequential:
    """The reference's U-Net block: ``n_convs`` x (3x3 convolution with bias, ReLU), then one BatchNorm.

    As in valentingol/LeafNothingBehind (``lnb/architecture/modules.py``, ``AutoEncoder``): one
    BatchNorm per block, after the last ReLU, half the BatchNorm memory traffic of one per convolution.
    """
    layers: list[nn.Module] = []
    for i in range(n_convs):
        layers += [nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1), nn.ReLU(inplace=True)]
    layers.append(BatchNorm2d(c_out))
    return nn.Sequential(*layers)


def upsampler(c_in: int, c_out: int, kind: str = "transpose") -> nn.Module:
    """Double the resolution: ``"transpose"``, the reference's 2x2 transposed convolution with stride 2
    (each output pixel sees one input pixel through one of four kernels: prone to a 2-pixel checkerboard),
    or ``"bilinear"``, bilinear interpolation followed by a 3x3 convolution."""
    if kind == "transpose":
        return nn.ConvTranspose2d(c_in, c_out, 2, stride=2)
    if kind == "bilinear":
        return nn.Sequential(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                             nn.Conv2d(c_in, c_out, 3, padding=1))
    raise ValueError(f"model.upsample must be one of {', '.join(UPSAMPLING)}; got {kind!r}")


class UNet(nn.Module):
    """U-Net returning ``widths[0]`` feature maps at input resolution.

    Works for any input size divisible by ``2 ** (len(widths) - 1)``; ``upsample``: see :func:`upsampler`.
    """

    def __init__(self, c_in: int, widths: list[int], convs_per_level: int = 2, skip: bool = True,
                 upsample: str = "transpose"):
        super().__init__()
        self.skip = skip
        self.down = nn.ModuleList(
            conv_block(c_in if i == 0 else widths[i - 1], w, convs_per_level) for i, w in enumerate(widths)
        )
        self.pool = nn.MaxPool2d(2)
        self.up = nn.ModuleList(upsampler(widths[i], widths[i - 1], upsample) for i in range(len(widths) - 1, 0, -1))
        self.merge = nn.ModuleList(
            conv_block(widths[i - 1] * (2 if skip else 1), widths[i - 1], convs_per_level) for i in range(len(widths) - 1, 0, -1)
        )
        self.out_channels = widths[0]
        self.factor = 2 ** (len(widths) - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.factor or x.shape[-2] % self.factor:
            raise ValueError(f"input {tuple(x.shape[-2:])} is not divisible by {self.factor}, the U-Net's down-sampling")
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else self.pool(x))
            skips.append(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips[:-1])):
            x = up(x)
            x = merge(torch.cat([x, skip], dim=1) if self.skip else x)
        return x


class Seasonality(nn.Module):
    """sin/cos of the date through a small MLP, broadcast to a feature map (a view, no copy, in
    channels-first order; a copy in channels_last order, see :meth:`forward`)."""

    def __init__(self, hidden: int, channels: int):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(2, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels))

    def forward(self, season: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
        v = self.mlp(season.to(like.dtype))
        maps = v[:, :, None, None].expand(-1, -1, like.shape[-2], like.shape[-1])
        if is_channels_last(like):
            # a channels_last copy: concatenated with a view (no memory format), the other inputs of a
            # channels_last model would give a channels-first input that the next convolution converts back
            return maps.contiguous(memory_format=torch.channels_last)
        return maps


class Encoder(nn.Module):
    """Inputs of one modality (+ embedded masks of t-2, t-1, + seasonality) -> U-Net features + 1x1 head."""

    def __init__(self, spec: EncoderSpec, cfg: ModelConfig, mask_channels: int):
        super().__init__()
        self.spec = spec
        c_in = 6 if spec.source == "s1" else 2
        self.mask_embed = nn.Conv2d(2 * mask_channels, 2 * cfg.mask_embedding, 1) if spec.masks else None
        self.season = Seasonality(cfg.season_hidden, cfg.season_channels) if spec.seasonality else None
        c_in += (2 * cfg.mask_embedding if spec.masks else 0) + (cfg.season_channels if spec.seasonality else 0)
        self.unet = UNet(c_in, cfg.encoder_widths, cfg.convs_per_level, cfg.skip, cfg.upsample)
        self.head = nn.Conv2d(self.unet.out_channels, 1, 1)

    def features(self, x: Encoded) -> torch.Tensor:
        parts = [x.s1 if self.spec.source == "s1" else x.s2]
        if self.mask_embed is not None:
            parts.append(self.mask_embed(x.masks.flatten(1, 2)))
        if self.season is not None:
            parts.append(self.season(x.season, parts[0]))
        return self.unet(torch.cat(parts, dim=1))


class LAIModel(nn.Module):
    """Encoder 1 (S1), encoder 2 (S2 history) and the fusion decoder, as a Table 1 row asks.

    ``forward`` returns a dict of LAI predictions (normalised units) keyed
    ``enc1``, ``enc2`` and ``dec``, for the parts the row has; with ``model.uncertainty`` also
    :data:`LOG_VAR`, the decoder's predicted log-variance (normalised units squared) of its error.
    """

    def __init__(self, cfg: ModelConfig, mask_channels: int):
        super().__init__()
        self.cfg = cfg
        self.row = ROWS[cfg.row]
        self.enc1 = Encoder(self.row.enc1, cfg, mask_channels) if self.row.enc1 else None
        self.enc2 = Encoder(self.row.enc2, cfg, mask_channels) if self.row.enc2 else None
        self.decoder = self.dec_head = self.dec_season = None
        if self.row.decoder:
            c_in = sum(e.unet.out_channels for e in (self.enc1, self.enc2) if e is not None)
            if cfg.decoder_seasonality:
                self.dec_season = Seasonality(cfg.season_hidden, cfg.season_channels)
                c_in += cfg.season_channels
            c_in += 4 * len(cfg.past_context)
            self.decoder = UNet(c_in, cfg.decoder_widths, cfg.convs_per_level, cfg.skip, cfg.upsample)
            outputs = (3 if cfg.gate_form == "mix_change" else 2) if cfg.gated_skip else 1  # own (LAI or change), gate, change
            self.dec_head = nn.Conv2d(self.decoder.out_channels, outputs, 1)
            if cfg.gated_skip:  # "add" starts as a constant change plus gate_start x the last clear LAI; "mix" as the
                with torch.no_grad():  # decoder's own LAI weighted by 1 - gate_start, the gate a constant map;
                    # "mix_change" as "mix", its change 0
                    (self.dec_head.weight if cfg.gate_form == "add" else self.dec_head.weight[1:]).zero_()
                    self.dec_head.bias.zero_()
                    self.dec_head.bias[1] = math.log(cfg.gate_start / (1 - cfg.gate_start))
        # built last, so that every other weight starts as it would without it
        self.spread_head = spread_head(self.decoder.out_channels) if predicts_spread(cfg) else None

    def forward(self, x: Encoded) -> dict[str, torch.Tensor]:
        out = self._heads(x)
        if self.cfg.residual:
            base = last_clear(x)
            out = {name: pred if name == LOG_VAR else pred + base for name, pred in out.items()}
        return out

    def _heads(self, x: Encoded) -> dict[str, torch.Tensor]:
        out, feats = {}, []
        for name, enc in (("enc1", self.enc1), ("enc2", self.enc2)):
            if enc is not None:
                f = enc.features(x)
                out[name] = enc.head(f)
                feats.append(f)
        if self.decoder is not None:
            if self.dec_season is not None:
                feats.append(self.dec_season(x.season, feats[0]))
            if self.cfg.past_context:
                feats.append(past_context(x, self.cfg.past_context, feats[0]))
            decoded = self.decoder(torch.cat(feats, dim=1))
            out["dec"] = self.dec_head(decoded)
            if self.cfg.gated_skip:
                own, gate, *change = out["dec"].split(1, dim=1)
                past = self.skip_base(x)
                if self.cfg.gate_form == "add":  # own: the change from the gated past LAI
                    out["dec"] = own + torch.sigmoid(gate) * past
                else:  # "mix", "mix_change": own is the LAI itself, trusted alone where no past date is clear
                    trust = torch.sigmoid(gate) * x.past_valid.any(1, keepdim=True)
                    trusted = past + change[0] if change else past  # "mix_change" moves the past by its own change
                    out["dec"] = own + trust * (trusted - own)
            if self.spread_head is not None:  # on detached features: the spread never changes the mean's training
                out[LOG_VAR] = self.spread_head(decoded.detach()).clamp(*LOG_VAR_RANGE)
        return out

    def skip_base(self, x: Encoded) -> torch.Tensor:
        """The past LAI the gated skip passes on (``model.skip_base``, smoothed by ``model.skip_smoothing``), (B, 1,
        H, W) normalised; 0 where no past date is clear."""
        past = two_date_level(x) if self.cfg.skip_base == "two_dates" else last_clear(x)
        if not self.cfg.skip_smoothing:
            return past
        clear = x.past_valid.any(1, keepdim=True)
        return torch.where(clear, masked_gaussian(past, clear.to(past.dtype), self.cfg.skip_smoothing), 0.0)

    @staticmethod
    def prediction(out: dict[str, torch.Tensor]) -> torch.Tensor:
        """The row's answer: the decoder's output, or the only encoder's head."""
        return out["dec"] if "dec" in out else next(iter(out.values()))

    @staticmethod
    def spread(out: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """The predicted standard deviation of the row's answer (normalised units), or None without one."""
        return torch.exp(0.5 * out[LOG_VAR].float()) if LOG_VAR in out else None


# predicted log-variance, normalised units: a standard deviation between 0.005 and 2 (0.025 and 10 LAI at LAI/5)
LOG_VAR_RANGE = (-10.6, 1.4)


def predicts_spread(cfg: ModelConfig) -> bool:
    """Whether a model of ``cfg`` has a spread head: ``model.uncertainty`` on a row with the decoder (an encoder
    stage trained alone predicts the mean only)."""
    return bool(cfg.uncertainty and ROWS[cfg.row].decoder)


def spread_head(channels: int) -> nn.Sequential:
    """Decoder features -> log-variance of the prediction's error: two 1x1 convolutions (per-pixel MLP)."""
    return nn.Sequential(nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.Conv2d(channels, 1, 1))


def last_clear(x: Encoded) -> torch.Tensor:
    """(B, 1, H, W) normalised LAI of t-1 where clear, else of t-2 where clear, else 0."""
    valid = x.past_valid
    return torch.where(valid[:, 1], x.s2[:, 1], torch.where(valid[:, 0], x.s2[:, 0], 0.0)).unsqueeze(1)


def gaussian_band(n: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(n, n) matrix that blurs n samples along one axis by a normalised Gaussian of ``sigma`` pixels, truncated at
    3 sigma (at least 1 pixel), zeros beyond the edges; symmetric, so it blurs rows or columns alike."""
    radius = max(1, math.ceil(3 * sigma))
    taps = torch.exp(-0.5 * (torch.arange(-radius, radius + 1, dtype=dtype, device=device) / sigma) ** 2)
    taps = taps / taps.sum()
    index = torch.arange(n, device=device)
    offset = index[None, :] - index[:, None]
    return torch.where(offset.abs() <= radius, taps[(offset + radius).clamp(0, 2 * radius)], 0.0)


def gaussian_blur(values: torch.Tensor, sigma: float) -> torch.Tensor:
    """(N, 1, H, W) ``values`` under a normalised Gaussian of ``sigma`` pixels (zeros beyond the edges); in the
    inputs' precision, never under bf16 autocast (which would round the LAI by up to 0.4 %). The Gaussian is
    separable: one band matrix per axis, two matrix products (18x faster on a CPU than a 2-D convolution of
    (6 sigma + 1)^2 taps: benchmarks/gaussian_blur.py)."""
    h, w = values.shape[-2:]
    # (autocast knows no meta device: a model sized on it, lai.infer.training_bytes, runs this too)
    off = torch.autocast(values.device.type, enabled=False) if values.device.type in ("cpu", "cuda") else nullcontext()
    with off:
        rows = gaussian_band(h, sigma, values.dtype, values.device)
        columns = rows if w == h else gaussian_band(w, sigma, values.dtype, values.device)
        return rows @ values @ columns


def masked_gaussian(values: torch.Tensor, weight: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B, 1, H, W) ``values`` averaged by a Gaussian of ``sigma`` pixels over the pixels of ``weight`` (1 or 0)
    (:func:`gaussian_blur`'s precision)."""
    return gaussian_blur(values * weight, sigma) / gaussian_blur(weight, sigma).clamp_min(1e-6)


def past_context(x: Encoded, sigmas, like: torch.Tensor) -> torch.Tensor:
    """(B, 4 * len(sigmas), H, W) in ``like``'s dtype and memory order: for each Gaussian of ``sigmas`` pixels, the
    mean of the clear pixels of t-2 and of t-1 under it (normalised convolution; 0 where no clear pixel is near) and
    the Gaussian-weighted clear fraction of each date, which says how much that mean rests on."""
    b, dates, h, w = x.s2.shape
    values = x.s2.reshape(b * dates, 1, h, w)
    weight = x.past_valid.reshape(b * dates, 1, h, w).to(values.dtype)
    clear = values * weight
    maps = []
    for sigma in sigmas:
        near = gaussian_blur(weight, sigma)
        mean = torch.where(near > 1e-3, gaussian_blur(clear, sigma) / near.clamp_min(1e-3), 0.0)
        maps += [mean.reshape(b, dates, h, w), near.reshape(b, dates, h, w)]
    out = torch.cat(maps, dim=1).to(like.dtype)
    return out.contiguous(memory_format=torch.channels_last) if is_channels_last(like) else out


def two_date_level(x: Encoded, sigma: float = 1.0) -> torch.Tensor:
    """(B, 1, H, W) normalised LAI at t-1 estimated from both past dates where both are clear, the last clear LAI
    elsewhere: the mean of t-1 and of t-2 moved by the local mean change from t-2 to t-1 (a Gaussian of ``sigma``
    pixels over the pixels clear on both dates). Where the change equals its local mean, its error against the true
    LAI at t-1 has about half the variance of one date's pixel noise (independent between dates)."""
    both = (x.past_valid[:, 0] & x.past_valid[:, 1]).unsqueeze(1)
    earlier, later = x.s2[:, :1], x.s2[:, 1:2]
    local = masked_gaussian(later - earlier, both.to(later.dtype), sigma)
    return torch.where(both, 0.5 * (later + earlier + local), last_clear(x))


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
