"""Batch loaders: :class:`TensorLoader` (uint8 tensors on the device), :class:`FolderLoader`
(torchvision pipeline), the ImageNet-style augmentation, and :func:`make_loader`, which picks
the one that fits the network's input and the data (see :mod:`ticketfmt.data.pipeline`).

Both loaders yield ``(images, labels)`` with ``images`` float32, NCHW, normalized and in
``channels_last`` memory format, and both have ``set_epoch(epoch)``, ``len()`` and
``augmentation`` (the name of what they do to training images, ``"none"`` for evaluation).

Example:
    >>> from ticketfmt.data import make_loader
    >>> loader = make_loader("cifar10-mini", "train", 128, train=True, device="cpu",
    ...                      data_dir="tests/data", input_size=32)  # doctest: +SKIP
    >>> loader.set_epoch(0)  # doctest: +SKIP
    >>> images, labels = next(iter(loader))  # doctest: +SKIP
    >>> images.shape, loader.augmentation  # doctest: +SKIP
    (torch.Size([128, 3, 32, 32]), 'crop32-pad4+flip')
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import torch

from ticketfmt.data.cache import ImageTensors, Progress, Split, load_split
from ticketfmt.data.pipeline import DataNotice, InputPipeline, input_pipeline
from ticketfmt.data.specs import get_spec
from ticketfmt.errors import DataError

__all__ = ["BatchLoader", "TensorLoader", "FolderLoader", "folder_transform", "make_loader"]


class BatchLoader(Protocol):
    """What every loader offers: ``set_epoch``, ``len()`` (batches) and ``(images, labels)`` batches."""

    num_samples: int

    def set_epoch(self, epoch: int) -> None: ...

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


def _epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch) * 7919 + 0x5DEECE66D) % (2**63 - 1)


class TensorLoader:
    """Batches of a uint8 NHWC image tensor (RGB, or one grayscale channel) held on the training device.

    Every batch is ``(images, labels)``: ``images`` float, NCHW, normalized with
    ``mean``/``std`` and in ``channels_last`` memory format; ``labels`` int64. With
    ``augment`` each image is randomly cropped from its 4-pixel zero-padded version
    (the padding is 0 before normalization) and flipped horizontally with probability
    one half, all in one gather on the device (no per-image Python loop).

    The order and the augmentation are drawn on the CPU from a ``torch.Generator``
    seeded with ``(seed, epoch)``, so they are the same on every device and every rank;
    call :meth:`set_epoch` before each epoch. With ``world_size > 1`` each rank gets a
    disjoint shard of that permutation: in shuffled mode all shards have the same size
    (a tail of fewer than ``world_size`` images is left out, a different one each
    epoch); in unshuffled mode (evaluation) the shards cover the whole split and
    differ in size by at most one image.

    Example:
        >>> images = torch.randint(0, 256, (10, 32, 32, 3), dtype=torch.uint8)
        >>> loader = TensorLoader(images, torch.arange(10), 4, mean=(0.5,) * 3,
        ...                       std=(0.25,) * 3, train=True, seed=0)
        >>> loader.set_epoch(1)
        >>> [tuple(x.shape) for x, _ in loader]
        [(4, 3, 32, 32), (4, 3, 32, 32), (2, 3, 32, 32)]
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batch_size: int, *,
                 mean: Sequence[float], std: Sequence[float], device: torch.device | str = "cpu",
                 train: bool = False, shuffle: bool | None = None, augment: bool | None = None,
                 drop_last: bool = False, seed: int = 0, rank: int = 0, world_size: int = 1,
                 pad: int = 4, dtype: torch.dtype = torch.float32) -> None:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
            raise DataError(f"TensorLoader needs uint8 images [N, H, W, 3] (or [N, H, W, 1]: grayscale), got "
                            f"{images.dtype} {tuple(images.shape)}", fix="pass ImageTensors.images")
        if labels.shape != images.shape[:1]:
            raise DataError(f"{labels.shape[0]} labels for {images.shape[0]} images",
                            fix="pass labels of the same length")
        if batch_size < 1:
            raise DataError(f"batch size {batch_size} is not positive", fix="pass 1 or more")
        if not 0 <= rank < world_size:
            raise DataError(f"rank {rank} is outside world size {world_size}",
                            fix="pass 0 <= rank < world_size")
        self.device = torch.device(device)
        self.batch_size = int(batch_size)
        self.shuffle = train if shuffle is None else bool(shuffle)
        self.augment = train if augment is None else bool(augment)
        self.drop_last = bool(drop_last)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.pad = int(pad)
        self.dtype = dtype
        self.epoch = 0
        n, h, w, c = images.shape
        self.augmentation = f"crop{w}-pad{self.pad}+flip" if self.augment else "none"
        self.dataset_size = int(n)
        self.image_shape = (int(h), int(w), int(c))
        std_t = torch.tensor([float(s) for s in std], dtype=torch.float32)
        mean_t = torch.tensor([float(m) for m in mean], dtype=torch.float32)
        self._scale = (1.0 / (255.0 * std_t)).to(self.device, dtype)
        self._shift = (mean_t / std_t).to(self.device, dtype)
        self.labels = labels.to(self.device, torch.int64)
        if self.augment:
            # pad once, with a 4th zero byte per pixel: a pixel is then one int32 word and a
            # random crop (with its flip) is a single int32 index_select per batch
            p = self.pad
            padded = torch.zeros((n, h + 2 * p, w + 2 * p, 4), dtype=torch.uint8, device=self.device)
            padded[:, p:p + h, p:p + w, :c] = images.to(self.device)
            self._words = padded.view(torch.int32).view(-1)
            self.images = None
        else:
            self.images = images.to(self.device).contiguous()
        if self.shuffle:
            self.num_samples = n // self.world_size
        else:
            self.num_samples = len(range(self.rank, n, self.world_size))

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order and augmentation the next iteration uses."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        if self.drop_last:
            return self.num_samples // self.batch_size
        return -(-self.num_samples // self.batch_size)

    def indices(self) -> torch.Tensor:
        """This rank's image indices for the current epoch, in batch order (CPU int64)."""
        return self._draw()[0]

    def _draw(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        n = self.dataset_size
        gen = torch.Generator().manual_seed(_epoch_seed(self.seed, self.epoch))
        if self.shuffle:
            perm = torch.randperm(n, generator=gen)
            m = self.num_samples
            order = perm[self.rank * m:(self.rank + 1) * m]
        else:
            order = torch.arange(self.rank, n, self.world_size)
        if not self.augment:
            return order, None, None
        # draw for all n images, then take this rank's, so ranks stay in step
        offsets = torch.randint(0, 2 * self.pad + 1, (n, 2), generator=gen)
        flips = torch.rand(n, generator=gen) < 0.5
        if self.shuffle:
            m = self.num_samples
            sl = slice(self.rank * m, (self.rank + 1) * m)
            return order, offsets[sl], flips[sl]
        return order, offsets[order], flips[order]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order, offsets, flips = self._draw()
        dev = self.device
        order_d = order.to(dev)
        h, w, c = self.image_shape
        total = len(self) * self.batch_size if self.drop_last else self.num_samples
        contiguous = not self.shuffle and self.world_size == 1 and not self.augment
        if self.augment:
            assert offsets is not None and flips is not None
            pw = w + 2 * self.pad
            plane = (h + 2 * self.pad) * pw
            # word offset of each crop's top-left corner and per-image column order
            corner = (order * plane + offsets[:, 0] * pw + offsets[:, 1]).to(dev)
            fl = flips.to(dev)
            rows = torch.arange(h, device=dev) * pw
            cols = torch.arange(w, device=dev)
            cols_rev = cols.flip(0)
        for start in range(0, total, self.batch_size):
            stop = min(start + self.batch_size, total)
            if contiguous:
                x = self.images[start:stop]
                y = self.labels[start:stop]
            else:
                idx = order_d[start:stop]
                y = self.labels.index_select(0, idx)
                if self.augment:
                    col = torch.where(fl[start:stop, None], cols_rev, cols)  # [B, W]
                    start_rows = corner[start:stop, None] + rows  # [B, H]
                    where = (start_rows[:, :, None] + col[:, None, :]).view(-1)
                    words = self._words.index_select(0, where)
                    x = words.view(torch.uint8).view(-1, h, w, 4)[..., :c]
                else:
                    x = self.images.index_select(0, idx)
            out = torch.empty(x.shape, dtype=self.dtype, device=dev)
            torch.mul(x, self._scale, out=out).sub_(self._shift)
            yield out.permute(0, 3, 1, 2), y  # NHWC storage == channels_last NCHW


class FolderLoader:
    """Batches of a large-image ImageFolder through a torchvision pipeline.

    The per-image pipeline is the dataset's transform (see :func:`folder_transform`:
    training ``RandomResizedCrop`` + flip, evaluation resize + center crop); ``augmentation``
    names it for the record. Batches are moved
    to ``device`` as float NCHW in ``channels_last`` format, like :class:`TensorLoader`.
    With ``distributed`` a ``DistributedSampler(rank, world_size)`` shards the data.
    The order is seeded by ``(seed, epoch)``; the augmentation is too when
    ``num_workers > 0`` (workers are seeded from the loader's generator), while with
    ``num_workers=0`` it draws from the global torch RNG.

    Example:
        >>> loader = make_loader("imagefolder:/data/pets", "train", 64, train=True,
        ...                      device="cuda", num_workers=8, input_size=224)  # doctest: +SKIP
        >>> loader.set_epoch(0)  # doctest: +SKIP
    """

    def __init__(self, dataset: torch.utils.data.Dataset, batch_size: int, *, train: bool,
                 device: torch.device | str = "cpu", num_workers: int = 2, seed: int = 0,
                 distributed: bool = False, rank: int = 0, world_size: int = 1,
                 drop_last: bool = False, augmentation: str = "none") -> None:
        from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

        self.device = torch.device(device)
        self.dataset = dataset
        self.augmentation = augmentation  # what the dataset's transform does, for the record
        self.seed = int(seed)
        self.rank = int(rank)
        self.epoch = 0
        self._gen = torch.Generator()
        self._distributed = bool(distributed)
        sampler: torch.utils.data.Sampler
        if distributed:
            sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank,
                                         shuffle=train, seed=seed, drop_last=drop_last)
        elif train:
            sampler = RandomSampler(dataset, generator=self._gen)
        else:
            sampler = SequentialSampler(dataset)
        self.sampler = sampler
        self.num_samples = len(sampler)  # type: ignore[arg-type]
        self._loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler,
                                  num_workers=num_workers, drop_last=drop_last,
                                  pin_memory=self.device.type == "cuda",
                                  generator=self._gen, persistent_workers=False)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order and augmentation the next iteration uses."""
        self.epoch = int(epoch)
        if isinstance(self.sampler, torch.utils.data.DistributedSampler):
            self.sampler.set_epoch(self.epoch)

    def __len__(self) -> int:
        return len(self._loader)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # worker seeds come from this generator: different per rank and per epoch
        self._gen.manual_seed(_epoch_seed(self.seed, self.epoch) + 104729 * self.rank)
        nb = self.device.type == "cuda"
        for images, labels in self._loader:
            images = images.to(self.device, non_blocking=nb).contiguous(
                memory_format=torch.channels_last)
            yield images, labels.to(self.device, non_blocking=nb)




class _TensorImages(torch.utils.data.Dataset):
    """Decoded uint8 images served as PIL images through a per-image ``transform`` (small data, large net)."""

    def __init__(self, data: ImageTensors, transform: Callable[[Any], Any]) -> None:
        self.data = data
        self.transform = transform

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, index: int) -> tuple[Any, int]:
        from PIL import Image

        return self.transform(Image.fromarray(self.data.images[index].numpy())), int(self.data.labels[index])


def folder_transform(pipe: InputPipeline, augment: bool) -> Callable[[Any], Any]:
    """The per-image torchvision pipeline of an ImageNet-size input.

    Training (``augment``): ``RandomResizedCrop(size, scale, ratio)`` (the pipeline's
    ``crop``), horizontal flip, normalize; otherwise resize ``size / 0.875``, center crop
    ``size``, normalize (open_lth's ``Resize(256)`` + ``CenterCrop(224)``).

    Example:
        >>> from ticketfmt.data import input_pipeline
        >>> t = folder_transform(input_pipeline("imagefolder:/x", 224), augment=True)
        >>> t.transforms[0].scale, t.transforms[0].ratio
        ((0.1, 1.0), (0.8, 1.25))
    """
    from torchvision import transforms as T

    norm = T.Normalize(pipe.mean, pipe.std)
    if augment:
        return T.Compose([T.RandomResizedCrop(pipe.size, scale=pipe.scale, ratio=pipe.ratio),
                          T.RandomHorizontalFlip(), T.ToTensor(), norm])
    return T.Compose([T.Resize(pipe.eval_resize), T.CenterCrop(pipe.size), T.ToTensor(), norm])


def _folder_images(name: str, split: Split, transform: Callable[[Any], Any],
                   data_dir: str | Path | None, cache_dir: str | Path | None, subset: int | None, seed: int,
                   progress: Progress | None, workers: int) -> torch.utils.data.Dataset:
    if get_spec(name).small:  # small images upscaled for a large network (resize=True)
        data = load_split(name, split, data_dir, cache_dir, subset, seed, progress, workers=workers)
        assert isinstance(data, ImageTensors)
        return _TensorImages(data, transform)
    return load_split(name, split, data_dir, cache_dir, subset, seed, progress, transform=transform)


def make_loader(name: str, split: Split, batch_size: int, train: bool,
                device: torch.device | str, data_dir: str | Path | None = None,
                subset: int | None = None, seed: int = 0, distributed: bool = False,
                rank: int = 0, world_size: int = 1, num_workers: int = 2,
                progress: Progress | None = None, *, cache_dir: str | Path | None = None,
                drop_last: bool = False, input_size: Any = None, resize: bool = False,
                normalize: str = "reference", crop: str = "reference",
                augment: bool | None = None) -> TensorLoader | FolderLoader:
    """Build the loader of a dataset split for a network of ``input_size``.

    The pipeline follows the network's input and the data (:func:`input_pipeline`): small
    inputs get a :class:`TensorLoader` over the uint8 tensor cache (crop with 4-pixel
    padding + flip), ImageNet-size inputs a :class:`FolderLoader` (RandomResizedCrop + flip).
    A :class:`DataNotice` warning says when images are resized to fit.

    ``train`` turns on shuffling and (unless ``augment=False``) augmentation. ``seed`` seeds
    the subset, the order and the augmentation. Without ``distributed``, ``rank``/``world_size``
    are ignored. ``num_workers`` is the DataLoader workers of folder pipelines and the decoding
    processes of a first tensor-cache load. ``input_size`` (int, ``(3, H, W)`` or an
    ``ArchSpec``), ``resize``, ``normalize`` (``"reference"``/``"cifar"``) and ``crop``
    (``"reference"``/``"torchvision"``) are those of :func:`input_pipeline`.

    Raises:
        DataError: unknown dataset or option, missing data, bad rank, a size mismatch.

    Example:
        >>> loader = make_loader("cifar10-mini", "test", 100, train=False, device="cpu",
        ...                      data_dir="tests/data")  # doctest: +SKIP
        >>> len(loader)  # doctest: +SKIP
        1
    """
    pipe = input_pipeline(name, input_size, data_dir=data_dir, resize=resize, normalize=normalize, crop=crop)
    if not distributed:
        rank, world_size = 0, 1
    elif not 0 <= rank < world_size:
        raise DataError(f"rank {rank} is outside world size {world_size}", fix="pass 0 <= rank < world_size")
    if pipe.notice:
        warnings.warn(pipe.notice, DataNotice, stacklevel=2)
    augment = train if augment is None else bool(augment)
    if pipe.tensor:
        data = load_split(name, split, data_dir, cache_dir, subset, seed, progress,
                          workers=max(1, num_workers), size=pipe.decode_size)
        assert isinstance(data, ImageTensors)
        return TensorLoader(data.images, data.labels, batch_size, mean=pipe.mean, std=pipe.std, device=device,
                            train=train, augment=augment, drop_last=drop_last, seed=seed, rank=rank,
                            world_size=world_size)
    ds = _folder_images(name, split, folder_transform(pipe, augment), data_dir, cache_dir, subset, seed,
                        progress, max(1, num_workers))
    return FolderLoader(ds, batch_size, train=train, device=device, num_workers=num_workers, seed=seed,
                        distributed=distributed, rank=rank, world_size=world_size, drop_last=drop_last,
                        augmentation=pipe.augmentation if augment else "none")
