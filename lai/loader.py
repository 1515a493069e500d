"""Cube -> batches of raw tensors, streamed from disk or resident on the device.

Streaming reads each batch from the HDF5 cube (one chunk per sample), so
memory does not grow with the dataset. Resident mode copies the whole split
to the device once (GPU memory, or RAM on a CPU) and slices batches there.
"""
from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np
import torch

from lai.cube import check_cube_file, decoded
from lai.encode import day_of_year
from lai.errors import ResidencyError
from lai.io import free_memory, memory_shortfall
from lai.lnb import TRIPLET_BYTES_PER_PIXEL

RAW_KEYS = ("s1", "lai", "scl")


class CubeSplit:
    """Indices of one or more splits of a cube, and reading of samples by position."""

    def __init__(self, path: str | Path, split: str | list[str] | None = None):
        self._file: h5py.File | None = None  # set first: close() runs even if the checks below raise
        self._readers: dict = {}
        self._chunk_readers: list[_ChunkReader] = []
        self.path = Path(path)
        self.attrs = check_cube_file(self.path)
        with h5py.File(self.path, "r") as f:
            labels = f["split"][:].astype(str)
            wanted = [split] if isinstance(split, str) else split
            self.index = np.flatnonzero(np.isin(labels, wanted)) if wanted else np.arange(len(labels))
            dates = f["date"][:][self.index]
            self.has_truth = "lai_true" in f
            self.shape = f["lai"].shape[-2:]
        self.split = split
        self.doy_target = day_of_year(dates[:, 2])
        self.doy_from = day_of_year(dates[:, 0])
        self._keys = RAW_KEYS + (("lai_true",) if self.has_truth else ())

    def __len__(self) -> int:
        return len(self.index)

    def _reader(self, key: str):
        """A function rows -> array for one variable: memory-mapped chunks, or h5py as a fallback."""
        if key not in self._readers:
            if self._file is None:
                self._file = h5py.File(self.path, "r")
            ds = self._file[key]
            if _ChunkReader.usable(ds):
                reader = _ChunkReader(self.path, ds)
                self._chunk_readers.append(reader)
                self._readers[key] = reader.read
            else:
                self._readers[key] = lambda rows, ds=ds: np.stack([ds[int(r)] for r in rows]) if len(rows) else ds[:0]
        return self._readers[key]

    def read(self, positions: np.ndarray) -> dict[str, np.ndarray]:
        """Read samples at ``positions`` (0..len-1) as numpy arrays, in the order given."""
        positions = np.asarray(positions)
        rows = self.index[positions]
        out = {key: decoded(self._reader(key)(rows)) for key in self._keys}
        if self.has_truth:
            truth = out.pop("lai_true")
            out["truth"] = truth[:, -1] if truth.ndim == 4 else truth  # the true LAI at t (the cube holds t-2, t-1, t)
        out["doy_target"] = self.doy_target[positions]
        out["doy_from"] = self.doy_from[positions]
        return out

    def regions(self) -> np.ndarray:
        """COUNTRY_AREA of each triplet of the split, in its order (:func:`lai.splits.regions_of`)."""
        import pandas as pd

        from lai.splits import regions_of

        with h5py.File(self.path, "r") as f:
            meta = pd.DataFrame({k: f[k][:][self.index].astype(str) for k in ("country", "area")})
        return regions_of(meta)

    def pixel_sizes(self) -> list[list[float]]:
        """The distinct pixel sizes ``[x, y]`` (the absolute values of the transform's a and e, in the units of each
        triplet's CRS, to 6 significant digits) of the split's triplets that have a transform; [] where none has."""
        with h5py.File(self.path, "r") as f:
            transform = f["transform"][:][self.index] if "transform" in f else np.empty((0, 6))
        transform = transform[np.isfinite(transform).all(axis=1)]
        return [list(size) for size in sorted({(float(f"{abs(t[0]):.6g}"), float(f"{abs(t[4]):.6g}")) for t in transform})]

    def has_target(self, valid_classes, block: int = 32) -> bool:
        """Whether any pixel of the split is usable at t (its SCL in ``valid_classes``): what the loss and the
        validation score (read by blocks of ``block`` triplets until one is found)."""
        from lai.pixels import scl_lookup

        usable, read = scl_lookup(valid_classes), self._reader("scl")
        return any(usable[read(self.index[i:i + block])[:, 2]].any() for i in range(0, len(self), block))

    def nbytes(self, float_bytes: int = 4) -> int:
        """Memory the whole split takes with floats of ``float_bytes`` (SCL stays uint8)."""
        h, w = self.shape
        per = (3 * 2 + 3 + (1 if self.has_truth else 0)) * h * w * float_bytes + 3 * h * w  # truth: t only (read)
        return per * len(self)

    def __del__(self):
        self.close()

    def close(self) -> None:
        self._readers = {}
        for reader in self._chunk_readers:
            reader.close()
        self._chunk_readers = []
        if self._file is not None:
            self._file.close()
            self._file = None


class _ChunkReader:
    """Direct reads of a cube variable stored as one uncompressed HDF5 chunk per triplet.

    The chunks' byte offsets are looked up once; a sample is then a single
    ``pread`` into the output array, with no HDF5 call on the hot path and no
    memory mapping (so resident memory does not grow with the file).
    """

    def __init__(self, path: Path, dataset: h5py.Dataset):
        self.shape, self.dtype = dataset.shape[1:], dataset.dtype
        self.nbytes = int(np.prod(self.shape)) * self.dtype.itemsize
        self.offsets = np.array(
            [dataset.id.get_chunk_info_by_coord((i,) + (0,) * len(self.shape)).byte_offset for i in range(dataset.shape[0])],
            np.int64,
        )
        self.fd = os.open(path, os.O_RDONLY)

    @staticmethod
    def usable(dataset: h5py.Dataset) -> bool:
        """One chunk per row, stored as is: no filter at all (compression, but also shuffle, scale-offset, checksums
        change the bytes on disk), else h5py reads it."""
        return (dataset.chunks == (1,) + dataset.shape[1:] and dataset.shape[0] > 0
                and dataset.id.get_create_plist().get_nfilters() == 0)

    def read(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(rows),) + self.shape, self.dtype)
        for k, r in enumerate(rows):
            if os.preadv(self.fd, [memoryview(out[k]).cast("B")], int(self.offsets[r])) != self.nbytes:
                raise OSError(f"short read in {self.fd}: the cube file changed or is truncated")
        return out

    def close(self) -> None:
        os.close(self.fd)


def _to_tensors(arrays: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)).to(device, non_blocking=True) for k, v in arrays.items()}


def _free_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    return free_memory()


class BatchLoader:
    """Iterate over a split in batches of raw tensors on ``device``.

    ``resident``: "on" keeps the whole split on the device (error if it does not
    fit), "off" streams from disk, "auto" keeps it resident when it takes less
    than half of the free memory. Shuffling uses ``generator``, whose state a
    checkpoint saves, so a resumed run sees the same order. ``drop_last`` leaves out the last partial
    batch when there is at least one full one (training: constant batch shapes, so neither cuDNN's
    autotuner nor torch.compile meets a new shape at every epoch's end). ``storage_dtype``: float type
    of the resident copy (default float16 on CUDA, float32 elsewhere).

    Under DDP (``world_size`` > 1) ``batch_size`` is this rank's share. With ``drop_last`` (training)
    every rank draws the same shuffled order and takes its own contiguous slice of each global batch of
    ``batch_size * world_size`` samples, so the ranks step together and see disjoint samples; without
    it (evaluation) each rank takes every ``world_size``-th sample.
    """

    def __init__(
        self,
        split: CubeSplit,
        batch_size: int,
        shuffle: bool = False,
        device: str | torch.device = "cpu",
        resident: str = "auto",
        generator: torch.Generator | None = None,
        max_batches: int | None = None,
        drop_last: bool = False,
        storage_dtype: torch.dtype | None = None,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.split, self.batch_size, self.shuffle = split, batch_size, shuffle
        self.device = torch.device(device)
        self.generator = generator or torch.Generator().manual_seed(0)
        self.max_batches = max_batches
        self.drop_last = drop_last
        self.rank, self.world_size = rank, world_size
        # On a GPU the resident copy keeps dB and LAI in float16 (precision 0.02 dB, 0.004 LAI): half the memory.
        self.resident_dtype = storage_dtype or (torch.float16 if self.device.type == "cuda" else torch.float32)
        need, free = split.nbytes(2 if self.resident_dtype == torch.float16 else 4), _free_bytes(self.device)
        if resident == "on" and need > 0.9 * free:
            raise ResidencyError(
                f"train.resident=on: split {split.split!r} of {split.path} needs {need / 2**30:.2f} GiB but only "
                f"{free / 2**30:.2f} GiB is free on {self.device}; use resident=off (stream from disk) or auto"
            )
        too_big = memory_shortfall(float(batch_size) * split.shape[0] * split.shape[1] * TRIPLET_BYTES_PER_PIXEL)
        if too_big:  # one streamed batch, checked before it is read (a cube may declare any tile size)
            raise ResidencyError(f"{split.path}: a batch of {batch_size} triplets of {split.shape[0]}x{split.shape[1]} "
                                 f"pixels {too_big}; use a smaller batch size or smaller tiles")
        self.resident = resident == "on" or (resident == "auto" and need < 0.5 * free)
        self._data = self._load_resident() if self.resident and len(split) else None

    def _load_resident(self, chunk: int = 256) -> dict[str, torch.Tensor]:
        """Copy the split to the device in chunks (host memory stays bounded by one chunk)."""
        n, data = len(self.split), {}
        for start in range(0, n, chunk):
            part = self.split.read(np.arange(start, min(start + chunk, n)))
            for key, value in part.items():
                t = torch.from_numpy(np.ascontiguousarray(value))
                if t.is_floating_point():
                    t = t.to(self.resident_dtype)
                if key not in data:
                    data[key] = torch.empty((n,) + t.shape[1:], dtype=t.dtype, device=self.device)
                data[key][start : start + len(t)] = t.to(self.device, non_blocking=True)
        return data

    def _sharded(self) -> bool:
        return self.world_size > 1 and not self.drop_last

    def __len__(self) -> int:
        n_samples = len(self.split)
        if self._sharded():
            n_samples = len(range(self.rank, n_samples, self.world_size))
        step = self.batch_size * (1 if self._sharded() else self.world_size)
        full, n = n_samples // step, -(-n_samples // step)
        if self.drop_last and (full or self.world_size > 1):
            n = full  # under DDP every rank must take the same number of steps
        return min(n, self.max_batches) if self.max_batches else n

    def __iter__(self):
        n = len(self.split)
        order = torch.randperm(n, generator=self.generator) if self.shuffle else torch.arange(n)
        if self._sharded():
            order = order[self.rank :: self.world_size]
        step = self.batch_size * (1 if self._sharded() else self.world_size)
        offset = 0 if self._sharded() else self.rank * self.batch_size
        for b in range(len(self)):
            idx = order[b * step + offset : b * step + offset + self.batch_size]
            if self._data is not None:
                dev_idx = idx.to(self.device)
                yield {k: v[dev_idx] for k, v in self._data.items()}
            else:
                yield _to_tensors(self.split.read(idx.numpy()), self.device)
