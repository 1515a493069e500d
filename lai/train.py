"""Training: one stage per Table 1 row, and the paper's two-step schedule for the final model.

A stage trains one row in its own run folder::

    <run>/config.yaml     everything that defines the stage (``lai.config.StageConfig``: model, train,
                          encoding, cube fingerprints, pre-trained parts); a rerun with an equal one
                          reuses or resumes the stage, any other is refused
    <run>/checkpoint.pt   model, optimizer, scheduler, random state of the shuffling and the
                          best-validation weights so far, after the last epoch
                          (``lai.checkpoint.TrainingState``)
    <run>/history.csv     per-epoch losses, validation RMSE, learning rate, seconds and samples/s
    <run>/model.pt        the best-validation weights, written with result.json (best epoch, whether
                          validation had stopped improving, device, package versions, git revision)
                          when the stage completes

Convergence: with ``train.schedule="plateau"`` the learning rate decays on the
epoch after ``lr_patience`` epochs without a better validation score (PyTorch's
rule; with ``train.decay_from_best`` the next epoch starts from the best weights so far) and the stage stops
after ``patience`` (``epochs`` is then a cap); with
``"milestones"`` it runs all ``epochs`` with decays at fixed epochs (the paper's
protocol with ``train.milestones: paper``, the reference code's single decay
with ``reference``). Either way a
stage whose best validation epoch lies within the last ``patience`` epochs was
still improving: ``result.json`` says ``converged: false``.

The final model first trains rows ``s1_masks_seas`` and ``s2_masks_seas`` (the
pre-trained encoders, reused if already done), then fine-tunes end to end
from their weights with intermediate supervision.
"""
from __future__ import annotations

import contextlib
import copy
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from lai.augment import augment
from lai.checkpoint import TrainingState, load_pretrained, read_trained, save_trained
from lai.config import (
    ConfigError,
    CubeRef,
    EncodingConfig,
    ModelConfig,
    Profile,
    StageConfig,
    TrainConfig,
    check_tile_size,
    parse_overrides,
    variant,
)
from lai.cube import check_valid_classes, cube_identity
from lai.distributed import (
    World,
    barrier,
    identical_across,
    local_device,
    main_process,
    pick_device,
    rank_batch_size,
    setup,
    sum_across,
)
from lai.encode import Encoded, encode_batch, loss_target
from lai.errors import TrainingDivergedError
from lai.facts import (
    EXTRA_ROWS,
    FINAL,
    PRETRAINED_FROM,
    ROWS,
    STAGE_CHECKPOINT_FILE,
    STAGE_CONFIG_FILE,
    STAGE_HISTORY_FILE,
    STAGE_RESULT_FILE,
    TRAIN,
    VAL,
    VALID_CLASSES,
    stage_label,
)
from lai.infer import bf16_on, build_model, forward, to_channels_last, training_bytes
from lai.io import atomic_path, atomic_write_text, memory_shortfall, output_lock
from lai.loader import BatchLoader, CubeSplit
from lai.loss import masked_mse, total_loss
from lai.model import LAIModel, last_clear, n_parameters
from lai.provenance import environment
from lai.stage_folder import StageResult, check_checkpoint, check_run_folder


def convergence(history: pd.DataFrame, patience: int) -> dict:
    """Best validation epoch and RMSE, the epoch the stage stopped at, the epochs after the best one
    (``flat_epochs``: validation did not improve on them), and whether validation had stopped improving by the end.

    Converged: the best epoch lies at least ``patience`` epochs before the last one.
    """
    best = int(history["val_mse"].idxmin())
    return {"best_epoch": int(history["epoch"].iloc[best]), "best_val_rmse": float(history["val_rmse"].iloc[best]),
            "stopped_epoch": int(history["epoch"].iloc[-1]), "flat_epochs": len(history) - 1 - best,
            "converged": bool(len(history) - 1 - best >= patience)}


def stage_config(profile: Profile, row: str, cube: str | Path, init_from: dict[str, str] | None = None) -> StageConfig:
    """The configuration of training ``row`` of ``profile`` on ``cube`` (from the pre-trained parts ``init_from``)."""
    model = replace(copy.deepcopy(profile.model), row=row)
    model.validate()  # what holds for the profile's row may not for this one (model.residual needs S2)
    return StageConfig(model=model, train=copy.deepcopy(profile.train),
                       encoding=copy.deepcopy(profile.encoding),
                       cube=CubeRef(path=str(Path(cube).resolve()), **cube_identity(cube)),
                       init_from={k: str(v) for k, v in (init_from or {}).items()})


def train_stage(
    profile: Profile,
    row: str,
    cube: str | Path,
    run_dir: str | Path,
    init_from: dict[str, str | Path] | None = None,
    resume: bool = False,
    progress: bool = True,
) -> StageResult:
    """Train one Table 1 row; reuse a completed identical run, resume a partial one if asked.

    The run folder is locked for the whole stage (by rank 0 of a distributed run): a second writer
    is refused, naming the holder.
    """
    with output_lock(run_dir, folder=STAGE_CONFIG_FILE) if main_process() else contextlib.nullcontext():
        return _train_stage(profile, row, cube, run_dir, init_from, resume, progress)


def _train_stage(profile: Profile, row: str, cube, run_dir, init_from, resume: bool, progress: bool) -> StageResult:
    """:func:`train_stage` with its run folder locked: setup, resume, loop, finish."""
    if row not in ROWS:
        raise ConfigError(f"row must be one of {', '.join(ROWS)}; got {row!r}")
    run_dir, cube = Path(run_dir), Path(cube)
    cfg = stage_config(profile, row, cube, init_from)
    tcfg = cfg.train
    done = check_run_folder(run_dir, cfg, resume)
    if done is not None:
        return done

    # setup: devices and processes, the model from its pre-trained parts, the training state, the data
    device = pick_device(tcfg.device, "train.device")
    world = setup(device)
    device, progress = local_device(device, world), progress and world.main
    rank_batch = rank_batch_size(tcfg.batch_size, world)
    use_bf16, channels_last = bf16_on(tcfg.bf16, device), tcfg.channels_last != "off"
    torch.manual_seed(tcfg.seed)
    splits = _splits(cube, cfg.model, cfg.encoding)
    too_big = device.type == "cpu" and memory_shortfall(training_bytes(cfg.model, cfg.encoding, splits[0].shape[0], rank_batch))
    if too_big:  # on the CPU, refused before any weight is allocated (any width can be asked for with --set)
        raise ConfigError(f"model.encoder_widths {list(cfg.model.encoder_widths)}, model.decoder_widths "
                          f"{list(cfg.model.decoder_widths)}: one training step of batch {rank_batch} on "
                          f"{splits[0].shape[0]}x{splits[0].shape[1]} tiles {too_big}")
    model = build_model(cfg.model, cfg.encoding)
    not_residual = set()  # pre-trained parts whose heads predict the LAI itself, which a residual model adds to
    for part, path in cfg.init_from.items():
        load_pretrained(model, part, path, cfg.model, PRETRAINED_FROM.get(cfg.model.row, {}).get(part))
        if cfg.model.residual and not read_trained(path)["config"].model.residual:
            not_residual.add(part)
    if tcfg.init_bias:
        init_head_bias(model, splits[0], cfg.encoding, skip=set(cfg.init_from), seed=tcfg.seed, shift=not_residual)
    model.to(device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    step_model = _step_model(model, tcfg, device, world)
    state = TrainingState.start(model, tcfg)
    aug_gen = torch.Generator() if tcfg.augment else None  # reseeded every epoch: augment_seed
    train_loader, val_loader = _loaders(*splits, rank_batch, tcfg, device, world, state.generator)

    # resume from the last epoch's checkpoint, or start the run folder
    ckpt_path = run_dir / STAGE_CHECKPOINT_FILE
    if ckpt_path.exists():
        state.restore(ckpt_path, lambda saved: check_checkpoint(saved, ckpt_path, cfg, run_dir))
        before = _world_sizes(state.history)
        if before and before[-1] != world.size and world.main:
            print(f"{run_dir}: resuming a stage trained on {before[-1]} process(es) with {world.size}: each rank's "
                  "share of the shuffled batches and its augmentation differ from an uninterrupted run; result.json "
                  "records both (world_sizes)", file=sys.stderr, flush=True)
    elif world.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / STAGE_CONFIG_FILE, yaml.safe_dump(cfg.to_dict(), sort_keys=False))

    t_stage = time.perf_counter()
    for epoch in range(state.next_epoch, tcfg.epochs):
        if tcfg.schedule == "plateau" and epoch - state.best_epoch >= tcfg.patience:
            break  # early stop (reached again when resuming a stopped stage)
        desc = f"{run_dir.name} epoch {epoch + 1}/{tcfg.epochs}"  # the run's name: a row, a variant or a seed's run
        record = {"epoch": epoch + 1, "lr": state.lr, "world_size": world.size}
        if aug_gen is not None:
            aug_gen.manual_seed(augment_seed(tcfg.seed, world.rank, epoch))
        record.update(train_epoch(step_model, state.optimizer, train_loader, tcfg, cfg.encoding, use_bf16, channels_last,
                                  desc, progress, augment_generator=aug_gen, world=world, after_step=state.after_step))
        record.update(validate(state.scored, val_loader, cfg.encoding, use_bf16, world))  # reduced across ranks: all agree
        if not math.isfinite(record["val_mse"]):  # weights diverged in the epoch's last steps: nothing kept of them
            raise TrainingDivergedError(f"{desc}: the validation error became {record['val_mse']} (the weights "
                                        "diverged); lower train.lr")
        state.end_epoch(record)
        if world.main:
            state.save(ckpt_path, cfg)
        if progress:
            print(f"{desc}: train loss {record['train_loss']:.4f}, val RMSE {record['val_rmse']:.3f} LAI, "
                  f"{record['samples_per_s']:.1f} samples/s", flush=True)

    return _finish(state, cfg, run_dir, device, world, t_stage, splits[0].pixel_sizes())


def init_head_bias(model: LAIModel, split: CubeSplit, enc: EncodingConfig, skip=(), seed: int = 0,
                   max_pixels: int = 2**21, shift=()) -> float:
    """Start every head not in ``skip`` (pre-trained parts) so that its mean prediction is the mean normalised LAI
    of ``split``'s targets (clear pixels of triplets drawn with ``seed``, at most ``max_pixels`` pixels, at least
    8 triplets); return that mean. The pre-trained heads of ``shift`` (parts trained to predict the LAI itself, now
    in a ``model.residual`` model that adds the last clear LAI to every head) are moved down by its mean.

    A spread head (``model.uncertainty``) starts at the log-variance of those targets.

    A head's output averaged over a batch is its bias (it reads batch-normalised features), so PyTorch's random
    bias would start the model up to 1/sqrt(channels) off. With ``model.residual`` the head learns the change
    from the last clear LAI, so its bias starts at mean target minus mean last clear LAI; the additive gated skip's
    change starts at mean target minus ``model.gate_start`` times the mean past LAI it passes on (its gate's start,
    ``model.skip_base``); the mixing gated skip's own LAI at the mean target.
    """
    rng = np.random.default_rng(seed)
    h, w = split.shape
    picked = np.sort(rng.choice(len(split), min(len(split), max(8, max_pixels // (h * w))), replace=False))
    x = encode_batch({k: torch.from_numpy(v) for k, v in split.read(picked).items()}, enc)
    target = float(x.target[x.target_valid].mean()) if x.target_valid.any() else 0.0
    past = model.skip_base(x) if model.cfg.gated_skip else last_clear(x)
    base = float(past[x.target_valid].mean()) if x.target_valid.any() else 0.0
    variance = float(x.target[x.target_valid].var()) if x.target_valid.sum() > 1 else 1.0
    heads = {"enc1": model.enc1 and model.enc1.head, "enc2": model.enc2 and model.enc2.head, "dec": model.dec_head}
    with torch.no_grad():
        for part, head in heads.items():
            if head is not None and part in shift:
                head.bias[0] -= base
            if head is None or part in skip:
                continue
            gated = part == "dec" and model.cfg.gated_skip
            adds = gated and model.cfg.gate_form == "add"  # its change starts where the gated skip leaves the mean
            offset = base if model.cfg.residual else model.cfg.gate_start * base if adds else 0.0
            if not gated:  # the gate's bias (channel 1) keeps its start, lai.model
                head.bias.zero_()
            head.bias[0] = target - offset
        if model.spread_head is not None:  # the spread starts at the targets' own: the error of predicting their mean
            model.spread_head[-1].bias.fill_(math.log(max(variance, 1e-4)))
    return target


def _splits(cube: Path, model: ModelConfig, enc: EncodingConfig) -> tuple[CubeSplit, CubeSplit]:
    """The train and validation splits of ``cube``, checked to be non-empty, to hold pixels the loss scores
    (usable at t under ``enc.valid_classes``) and to fit the model's tile size."""
    train_split, val_split = CubeSplit(cube, TRAIN), CubeSplit(cube, VAL)
    check_valid_classes(cube, train_split.attrs, enc.valid_classes)
    check_tile_size(train_split.shape, model, f"{cube}:")
    for split in (train_split, val_split):
        if len(split) == 0:
            raise ConfigError(f"{cube}: the {split.split} split is empty; check the splits configuration "
                              "(splits.val_fraction, splits.block_size)")
        if not split.has_target(enc.valid_classes):
            raise ConfigError(f"{cube}: no pixel of the {split.split} split is usable at t under "
                              f"encoding.valid_classes {list(enc.valid_classes)} (the SCL classes of clear LAI; "
                              f"default {list(VALID_CLASSES)}): nothing to train or validate on")
    return train_split, val_split


def _step_model(model: LAIModel, tcfg: TrainConfig, device: torch.device, world: World) -> torch.nn.Module:
    """What the training step calls: the model, wrapped for DDP across processes and compiled if asked."""
    step_model = model
    if world.size > 1:
        from torch.nn.parallel import DistributedDataParallel

        step_model = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return torch.compile(step_model) if tcfg.compile else step_model


def _world_sizes(history: list[dict]) -> list[int]:
    """The numbers of processes the epochs of ``history`` ran on, in order of first use (a stage resumed under
    another ``torchrun`` shows two); epochs saved before lai recorded it are left out."""
    sizes = [int(h["world_size"]) for h in history if isinstance(h.get("world_size"), (int, float))
             and math.isfinite(h["world_size"])]
    return list(dict.fromkeys(sizes))


def _loaders(train_split: CubeSplit, val_split: CubeSplit, rank_batch: int, tcfg: TrainConfig, device: torch.device,
             world: World, generator: torch.Generator) -> tuple[BatchLoader, BatchLoader]:
    """This rank's loaders (``rank_batch`` triplets per batch): the training split shuffled by ``generator``
    (whole global batches only), the validation split."""
    train_loader = BatchLoader(train_split, rank_batch, True, device, tcfg.resident, generator, tcfg.max_batches_per_epoch,
                               drop_last=True, rank=world.rank, world_size=world.size)
    if len(train_loader) == 0:
        raise ConfigError(f"{train_split.path}: the train split ({len(train_split)} triplets) is smaller than one global "
                          f"batch (train.batch_size={tcfg.batch_size}) shared by {world.size} processes")
    val_loader = BatchLoader(val_split, rank_batch, False, device, tcfg.resident, rank=world.rank, world_size=world.size)
    return train_loader, val_loader


def _finish(state: TrainingState, cfg: StageConfig, run_dir: Path, device: torch.device, world: World,
            t_stage: float, pixel_sizes: list) -> StageResult:
    """Keep the best-validation weights; rank 0 writes history.csv, model.pt and result.json."""
    tcfg = cfg.train
    hist = pd.DataFrame(state.history)
    state.model.load_state_dict(state.best_model)
    result = {"row": cfg.row, "epochs": len(hist), "max_epochs": tcfg.epochs, "schedule": tcfg.schedule,
              **convergence(hist, tcfg.patience), "parameters": n_parameters(state.model), "device": str(device),
              "world_size": world.size, "world_sizes": _world_sizes(state.history) or [world.size],
              # under torchrun: every rank ends with the weights rank 0 writes (DistributedDataParallel kept them in step;
              # BatchNorm's running statistics are each rank's own, rank 0's written, as DDP broadcasts them from it)
              "ranks_identical": identical_across([state.best_model[n] for n, _ in state.model.named_parameters()], world),
              "seconds_this_session": time.perf_counter() - t_stage,
              "environment": environment()}
    if world.main:
        with atomic_path(run_dir / STAGE_HISTORY_FILE) as tmp:
            hist.to_csv(tmp, index=False)
        save_trained(run_dir, state.best_model, cfg, pixel_sizes)
        atomic_write_text(run_dir / STAGE_RESULT_FILE, json.dumps(result, indent=2))
    barrier(world)  # the next stage (or rank) reads what rank 0 has just written
    return StageResult(cfg.row, run_dir, hist, result["seconds_this_session"], result["parameters"])


def train_step(model, opt: torch.optim.Optimizer, x: Encoded, tcfg: TrainConfig, use_bf16: bool
               ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One optimisation step on an encoded batch: forward (under bf16 autocast if ``use_bf16``), the loss
    (:func:`lai.loss.total_loss` with ``tcfg``'s weights), backward, optimizer step. Returns the loss and
    its parts, on the device (reading them back would synchronise a GPU). The loss returned is the mean's
    (MSE terms); a spread head's negative log-likelihood, also minimised, is its own part ``nll``."""
    with torch.autocast(x.s1.device.type, dtype=torch.bfloat16, enabled=use_bf16):
        out = model(x)
    loss, parts = total_loss(out, x, tcfg)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return (loss.detach() - parts["nll"] if "nll" in parts else loss), parts


def train_epoch(model, opt, loader: BatchLoader, tcfg: TrainConfig, enc: EncodingConfig, use_bf16: bool,
                channels_last: bool, desc: str = "train", progress: bool = True, log_every: int = 10,
                augment_generator: torch.Generator | None = None, world: World = World(),
                after_step: Callable[[], None] | None = None) -> dict[str, float]:
    """One pass over the training split (:func:`train_step` per batch, then ``after_step()`` if given); returns
    mean losses (per sample), seconds and samples/s.

    ``tcfg`` gives the loss weights (:func:`lai.loss.total_loss`), ``enc`` the input encoding.

    With ``augment_generator`` every batch is randomly rotated and flipped first (:mod:`lai.augment`).

    Losses are summed on the device and read back only every ``log_every`` batches, so a GPU is
    not synchronised at every step. Under DDP the sums and samples/s cover every rank.
    """
    from lai.progress import tqdm

    model.train()
    t0, seen, sums = time.perf_counter(), 0, {}
    bar = tqdm(loader, desc=desc, unit="batch", leave=False, disable=not progress)
    for step, raw in enumerate(bar):
        if augment_generator is not None:
            raw = augment(raw, augment_generator)
        x = loss_target(encode_batch(raw, enc, channels_last), raw["scl"][:, 2], tcfg.loss_classes)
        if channels_last:
            x = to_channels_last(x)
        loss, parts = train_step(model, opt, x, tcfg, use_bf16)
        if after_step is not None:
            after_step()
        n = x.target.shape[0]
        seen += n
        for k, v in {"loss": loss, **parts}.items():
            sums[k] = sums.get(k, 0.0) + v.detach() * n
        if step % log_every == 0:
            bar.set_postfix(loss=f"{loss.item():.4f}", samples_s=f"{seen / (time.perf_counter() - t0):.1f}",
                            refresh=False)  # shown at the bar's next update (a refresh now would show a stale count)
    totals = sum_across(torch.stack([*sums.values(), torch.tensor(float(seen), device=loader.device)]), world).tolist()
    seen = int(totals[-1])
    means = {f"train_{k}": v / max(seen, 1) for k, v in zip(sums, totals)}
    if not math.isfinite(means.get("train_loss", 0.0)):
        raise TrainingDivergedError(f"{desc}: the training loss became {means['train_loss']}; lower train.lr")
    seconds = time.perf_counter() - t0
    return {**means, "seconds": seconds, "samples_per_s": seen / seconds}


@torch.no_grad()
def validate(model: LAIModel, loader: BatchLoader, enc: EncodingConfig, use_bf16: bool, world: World = World()) -> dict[str, float]:
    """Pooled MSE (normalised units) of the row's prediction over pixels clear at t (over all ranks)."""
    model.eval()
    sse, count = 0.0, 0
    for raw in loader:
        x, pred = forward(model, raw, enc, use_bf16)
        n = float(x.target_valid.sum())
        sse += float(masked_mse(pred, x.target, x.target_valid)) * n
        count += n
    sse, count = sum_across(torch.tensor([sse, count], dtype=torch.float64, device=loader.device), world).tolist()
    mse = sse / count if count else float("nan")
    return {"val_mse": mse, "val_rmse": math.sqrt(mse) * enc.lai_scale if count else float("nan")}


def augment_seed(seed: int, rank: int, epoch: int) -> int:
    """Seed of one epoch's augmentation draws: different for every rank of a distributed run and every
    epoch, reproducible from the training seed alone (so a resumed run draws what it would have drawn)."""
    return int(np.random.SeedSequence([seed, rank, epoch]).generate_state(1)[0])


def train_rows(
    profile: Profile, cube: str | Path, runs_root: str | Path, rows: list[str] | None = None,
    resume: bool = True, progress: bool = True,
) -> dict[str, StageResult]:
    """Train the given rows (default: all six) under ``runs_root/<row>``, one seed each (``train.seed``).

    The final row is fine-tuned from the encoders of rows ``s1_masks_seas`` and
    ``s2_masks_seas``, which are trained first (once) when not yet done. The
    further seeds of the chosen model are :func:`train_chosen`'s.
    """
    rows = list(rows or ROWS)
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise ConfigError(f"unknown row(s) {', '.join(map(str, unknown))}; rows are {', '.join(ROWS)} (or all)")
    order = [r for r in ROWS if r in rows or any(r in PRETRAINED_FROM.get(x, {}).values() for x in rows)]
    runs_root = Path(runs_root)
    results: dict[str, StageResult] = {}
    for row in order:
        init = {part: runs_root / src for part, src in PRETRAINED_FROM.get(row, {}).items()}
        results[row] = train_stage(profile, row, cube, runs_root / row, init_from=init, resume=resume, progress=progress)
    return results


def train_variant(profile: Profile, name: str, cube: str | Path, runs_root: str | Path, seed: int | None = None,
                  run: str | None = None, resume: bool = True, progress: bool = True) -> StageResult:
    """Fine-tune the final model (``name`` "final") or a variant of it (a name of ``lai.facts.EXTRA_ROWS``) from the
    shared pre-trained encoders, with training seed ``seed`` (default ``train.seed``), in ``runs_root/<run or name>``."""
    train_rows(profile, cube, runs_root, list(PRETRAINED_FROM[FINAL].values()), resume, progress)
    return fine_tune(profile, name, cube, runs_root, seed, run, resume, progress)


def fine_tune(profile: Profile, name: str, cube: str | Path, runs_root: str | Path, seed: int | None = None,
              run: str | None = None, resume: bool = True, progress: bool = True,
              overrides: list[str] | None = None) -> StageResult:
    """:func:`train_variant`'s fine-tuning alone, from the encoders already trained under ``runs_root`` (whatever
    profile trained them: ``benchmarks/gated_start.py --finetune-set`` fine-tunes with settings of its own, the
    ``overrides``: :func:`fine_tune_profile`)."""
    runs_root = Path(runs_root)
    init = {part: runs_root / src for part, src in PRETRAINED_FROM[FINAL].items()}
    return train_stage(fine_tune_profile(profile, name, seed, overrides), FINAL, cube, runs_root / (run or name),
                       init_from=init, resume=resume, progress=progress)


def fine_tune_profile(profile: Profile, name: str, seed: int | None = None, overrides: list[str] | None = None) -> Profile:
    """The profile that fine-tunes ``name`` ("final" or a key of ``lai.facts.EXTRA_ROWS``): ``profile`` with the
    variant's settings, then ``overrides`` ("section.key=value", which win over the variant's: a setting the variant
    fixes can be measured too), then the training seed ``seed`` (default ``train.seed``)."""
    base = profile if name == FINAL else variant(profile, EXTRA_ROWS[name].overrides)
    if overrides:
        base = variant(base, parse_overrides(overrides))
    return replace(base, train=replace(base.train, seed=base.train.seed if seed is None else seed))


def train_extras(profile: Profile, cube: str | Path, runs_root: str | Path, resume: bool = True,
                 progress: bool = True) -> dict[str, StageResult]:
    """Train the rows beyond the paper (``lai.facts.EXTRA_ROWS``) under ``runs_root/<name>``: the final
    model with other settings, fine-tuned from the same pre-trained encoders as the final row."""
    return {name: train_variant(profile, name, cube, runs_root, resume=resume, progress=progress) for name in EXTRA_ROWS}


def train_chosen(profile: Profile, cube: str | Path, runs_root: str | Path, resume: bool = True,
                 progress: bool = True) -> tuple[pd.DataFrame, dict[str, StageResult]]:
    """Choose the run's model from validation scores only, then train its seeds.

    The final model and each of ``profile.candidates`` (variants of it) are fine-tuned once from the same
    pre-trained encoders; the one of lowest best validation RMSE is chosen (the final model on a tie) and
    fine-tuned again with each further seed (``train.seeds``, :func:`seed_runs`). Returns the selection
    table (``model``, ``title``, ``best_val_rmse``, ``best_epoch``, ``chosen``) and the chosen model's
    stages keyed by run name.
    """
    first = {name: train_variant(profile, name, cube, runs_root, resume=resume, progress=progress)
             for name in (FINAL, *profile.candidates)}
    selection = pd.DataFrame([{"model": name, "title": stage_label(name)[1],
                               **convergence(result.history, profile.train.patience)} for name, result in first.items()])
    chosen = str(selection.loc[selection["best_val_rmse"].idxmin(), "model"])
    selection["chosen"] = selection["model"] == chosen
    runs = {run: first[chosen] if run == chosen else
            train_variant(profile, chosen, cube, runs_root, seed, run, resume=resume, progress=progress)
            for run, seed in seed_runs(chosen, profile.train).items()}
    return selection[["model", "title", "best_val_rmse", "best_epoch", "chosen"]], runs


def seed_runs(model: str, tcfg) -> dict[str, int]:
    """Run folder name -> training seed of each of the ``train.seeds`` trainings of ``model`` (a Table 1 row or a
    variant of the final model)."""
    return {model if k == 0 else f"{model}_seed{tcfg.seed + k}": tcfg.seed + k for k in range(tcfg.seeds)}
