"""The data layer: dataset specs, the uint8 tensor cache, input pipelines and batch loaders.

* :mod:`~ticketfmt.data.specs`: :class:`DatasetSpec`, the registry :data:`DATASETS`, normalizations;
* :mod:`~ticketfmt.data.catalog`: the built-in datasets (registered on import);
* :mod:`~ticketfmt.data.cache`: decoding sources once into uint8 tensors, cached as safetensors;
* :mod:`~ticketfmt.data.pipeline`: which pipeline a network's input size and the data call for;
* :mod:`~ticketfmt.data.loaders`: :class:`TensorLoader`, :class:`FolderLoader`, :func:`make_loader`.

Example:
    >>> from ticketfmt.data import input_pipeline
    >>> input_pipeline("cifar10-mini", 32).augmentation
    'crop32-pad4+flip'
"""

from ticketfmt.data import catalog  # noqa: F401  (fills DATASETS)
from ticketfmt.data.cache import (
    ImageTensors,
    Progress,
    cache_path,
    check_identity,
    default_cache_dir,
    default_data_dir,
    eval_split_name,
    load_split,
    subset_indices,
)
from ticketfmt.data.loaders import BatchLoader, FolderLoader, TensorLoader, folder_transform, make_loader
from ticketfmt.data.pipeline import CROPS, SMALL_INPUT, DataNotice, InputPipeline, image_side, input_pipeline
from ticketfmt.data.specs import DATASETS, NORMALIZE, DatasetSpec, get_spec, normalization, register_dataset


__all__ = [
    "DATASETS",
    "DatasetSpec",
    "NORMALIZE",
    "CROPS",
    "SMALL_INPUT",
    "ImageTensors",
    "BatchLoader",
    "TensorLoader",
    "FolderLoader",
    "InputPipeline",
    "DataNotice",
    "Progress",
    "get_spec",
    "register_dataset",
    "normalization",
    "input_pipeline",
    "image_side",
    "folder_transform",
    "default_data_dir",
    "default_cache_dir",
    "cache_path",
    "load_split",
    "subset_indices",
    "eval_split_name",
    "check_identity",
    "make_loader",
]
