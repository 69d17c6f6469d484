"""The :class:`Ticket`: a binary mask over a network's prunable weights plus the weights to start from."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from huggingface_hub import ModelHubMixin
from torch import nn

from ticketfmt.errors import HubNotFoundError, MaskError, TicketError, TicketFormatError, UnknownArchError
from ticketfmt.checks import check_layers, check_tensors
from ticketfmt.format.tensors import array_to_tensor, decode_tensors, encode_tensors, write_tensors
from ticketfmt.format.arrays import count_true, start_read
from ticketfmt.sparsity import SparsityFigures
from ticketfmt.metadata import file_metadata  # torch-free, shared with the packed convert path
from ticketfmt.zoo import ArchSpec, build_model, get_arch, in_state_dict_order, prunable_names, spec_from_json
from ticketfmt.zoo.infer import PrunedState, infer_arch, model_state, split_pruned

if TYPE_CHECKING:
    from huggingface_hub import ModelCard

    from ticketfmt.ticketfile import TicketFile

__all__ = ["Ticket", "HUB_TAGS", "file_metadata"]

WEIGHTS = ("init", "trained")
HUB_TAGS = ("lottery-ticket", "sparse", "pruning", "elastic-lottery-ticket")
"""Tags of every ticket repo on the Hub (the card adds the architecture and the datasets)."""


class Ticket(SparsityFigures, ModelHubMixin, library_name="ticketfmt", tags=list(HUB_TAGS), pipeline_tag="image-classification"):
    """A lottery ticket: masks over the prunable weights, the weights to start from, and what is known about it.

    ``init`` is the whole state dict at the rewind point (BatchNorm buffers included) and
    ``trained`` optionally the weights after training; in both, pruned positions hold
    zeros (a ticket is ``θ ⊙ m``), which makes the two file encodings lossless.

    Example:
        >>> from ticketfmt import Ticket, build_model
        >>> model = build_model("cifar_resnet20", seed=0)
        >>> ticket = Ticket.from_model(model, "cifar_resnet20")
        >>> ticket.sparsity
        0.0
        >>> ticket.save("r20.ticket")  # doctest: +SKIP
        >>> Ticket.load("r20.ticket").arch  # doctest: +SKIP
        'cifar_resnet20'

    On the Hugging Face Hub (through ``huggingface_hub.ModelHubMixin``):

        >>> ticket = Ticket.from_pretrained("user/cifar_resnet56-cifar10-ticket")  # doctest: +SKIP
        >>> model = ticket.build_model()  # doctest: +SKIP
        >>> ticket.push_to_hub("user/cifar_resnet56-cifar10-ticket")  # doctest: +SKIP

    The Hub hooks (``_save_pretrained``, ``_from_pretrained``, ``generate_model_card``,
    ``push_to_hub``) call the Hub layer lazily through :mod:`ticketfmt.hub.hooks`, as
    ``huggingface_hub.ModelHubMixin`` subclasses do: nothing is patched onto this class, so
    ``from ticketfmt.ticket import Ticket`` and ``from ticketfmt import Ticket`` behave alike.
    """

    def __init__(self, arch: str | ArchSpec, masks: Mapping[str, torch.Tensor], init: Mapping[str, torch.Tensor],
                 trained: Mapping[str, torch.Tensor] | None = None, provenance: Mapping[str, Any] | None = None,
                 results: list[dict[str, Any]] | None = None, *, num_classes: int | None = None,
                 _zero_pruned: bool = True) -> None:
        self.spec: ArchSpec = get_arch(arch, num_classes)
        self.masks: dict[str, torch.Tensor] = {k: v for k, v in masks.items()}
        self.init: dict[str, torch.Tensor] = dict(init)
        self.trained: dict[str, torch.Tensor] | None = dict(trained) if trained is not None else None
        self.provenance: dict[str, Any] = dict(provenance or {})
        self.results: list[dict[str, Any]] = list(results or [])
        self.path: str | None = None
        self.file_sha256: str | None = None
        self.encoding: str | None = None
        self.hub_repo_id: str | None = None  # set by from_pretrained: where the ticket came from
        self.hub_revision: str | None = None  # and the commit it was read at
        self._validate()
        for weights in (self.init, self.trained):
            if weights is None or not _zero_pruned:  # e.g. a packed file holds no pruned values: nothing to zero
                continue
            for name, m in self.masks.items():
                weights[name] = torch.where(m, weights[name], torch.zeros((), dtype=weights[name].dtype))

    # -- validation ------------------------------------------------------------------------------
    def _validate(self) -> None:
        # The checks shared with the packed conversion path (ticketfmt.checks), then the masks' values.
        check_tensors(self.spec, {k: tuple(m.shape) for k, m in self.masks.items()},
                      {section: getattr(self, section) for section in WEIGHTS})
        for name, m in self.masks.items():
            if m.dtype != torch.bool:
                if not bool(((m == 0) | (m == 1)).all()):
                    raise MaskError(f"mask {name!r} is not binary", tensor=name, fix="masks hold only 0 and 1")
                self.masks[name] = m.to(torch.bool)

    # -- properties ------------------------------------------------------------------------------
    @property
    def arch(self) -> str:
        """The architecture id, e.g. ``cifar_resnet56`` or ``timm/resnet50``."""
        return self.spec.id

    @property
    def num_classes(self) -> int:
        return self.spec.num_classes

    def layer_density(self) -> dict[str, tuple[int, int]]:
        """``name -> (kept, total)`` for every prunable weight, in module order."""
        return {k: (count_true(m), m.numel()) for k, m in self.masks.items()}

    @property
    def verified(self) -> bool:
        """Whether an evaluation result is recorded (``ticket verify`` adds one); ``push`` wants one."""
        from ticketfmt.hub import hooks
        return hooks.is_verified(self.results)

    @property
    def metadata(self) -> dict[str, str]:
        """The ``__metadata__`` strings written with the ticket (before the payload checksum)."""
        return self._metadata("packed" if self.encoding is None else self.encoding)

    def _metadata(self, encoding: str) -> dict[str, str]:
        layers = {k: (tuple(self.masks[k].shape), kept) for k, (kept, _) in self.layer_density().items()}
        return file_metadata(self.spec, self.provenance, self.results, layers, encoding)

    def __repr__(self) -> str:
        extra = ", trained" if self.trained is not None else ""
        return f"Ticket(arch={self.arch!r}, sparsity={self.sparsity:.4f}, layers={len(self.masks)}{extra})"

    # -- construction ----------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model: nn.Module, arch: str | ArchSpec | None = None,
                   masks: Mapping[str, torch.Tensor] | str | None = None, *,
                   trained: nn.Module | Mapping[str, torch.Tensor] | None = None,
                   provenance: Mapping[str, Any] | None = None, num_classes: int | None = None) -> Ticket:
        """Make a ticket from a model: its current weights as ``init``, and masks.

        ``arch`` is read off the model when omitted: timm and torchvision ResNets and VGGs and
        the builtin CIFAR models, labelled by the library that built them (a
        ``torchvision.models.resnet50()`` is ``torchvision/resnet50``, not ``timm/resnet50``),
        with every state-dict shape checked, so a variant the zoo lacks is refused by name.

        The masks: a model pruned with ``torch.nn.utils.prune`` gives its ``weight_mask`` s
        (its weights are ``weight_orig ⊙ weight_mask``; unpruned layers get all-ones masks);
        otherwise all-ones masks, unless ``masks="nonzero"`` (keep the non-zero weights of a
        model pruned by zeroing) or a mapping ``name -> mask`` is given. ``trained`` (a model or
        a state dict, pruned or not) is stored as the trained weights.

        Example:
            >>> model = build_model("cifar_resnet20", seed=1)
            >>> Ticket.from_model(model).arch, Ticket.from_model(model, "cifar_resnet20").sparsity
            ('cifar_resnet20', 0.0)
            >>> import torchvision  # doctest: +SKIP
            >>> Ticket.from_model(torchvision.models.resnet50()).arch  # doctest: +SKIP
            'torchvision/resnet50'
        """
        state = model_state(model)
        if arch is None:
            spec = get_arch(infer_arch(model, {k: tuple(v.shape) for k, v in state.state.items()}), num_classes)
        else:
            spec = get_arch(arch, num_classes if num_classes is not None else _head_classes(model, arch))
        init = in_state_dict_order(spec, state.state)  # prune's reparametrization reorders a module's keys
        trained_sd = None
        if trained is not None:
            sd = trained.state_dict() if isinstance(trained, nn.Module) else trained
            trained_sd = in_state_dict_order(spec, split_pruned(sd).state)
        return cls(spec, _masks_of(spec, state, masks), init, trained_sd, provenance)

    def replace(self, **changes: Any) -> Ticket:
        """A new ticket with some fields replaced (``masks``, ``init``, ``trained``, ``provenance``, ``results``, ``arch``).

        Example:
            >>> t2 = ticket.replace(results=[])  # doctest: +SKIP
        """
        fields: dict[str, Any] = {"arch": self.spec, "masks": self.masks, "init": self.init, "trained": self.trained,
                                  "provenance": self.provenance, "results": self.results}
        unknown = set(changes) - set(fields)
        if unknown:
            raise TypeError(f"Ticket.replace() got unknown field(s) {sorted(unknown)}")
        fields.update(changes)
        return Ticket(fields["arch"], fields["masks"], fields["init"], fields["trained"], fields["provenance"],
                      fields["results"])

    def build_model(self, weights: str = "init", device: str | torch.device | None = None) -> nn.Module:
        """The real ``nn.Module`` (timm, torchvision or builtin) with the masked weights loaded.

        The module is built on the meta device and materialized on ``device`` (default the CPU)
        without being initialized: every tensor of its state dict comes from the ticket (copied,
        so training the model leaves the ticket as it is).

        Example:
            >>> model = ticket.build_model()  # doctest: +SKIP
            >>> model(torch.zeros(1, 3, 32, 32)).shape  # doctest: +SKIP
            torch.Size([1, 10])
        """
        if weights not in WEIGHTS:
            raise ValueError(f"weights must be 'init' or 'trained', not {weights!r}")
        state = self.init if weights == "init" else self.trained
        if state is None:
            raise TicketError(f"this {self.arch} ticket holds no trained weights",
                              fix="use weights='init', or retrain it with `ticket verify`")
        from ticketfmt.zoo import get_family
        # No allocation and no init (the reference init alone takes seconds on a VGG): the ticket's tensors win.
        with torch.device("meta"):
            model = get_family(self.spec.family).build(self.spec)
        model = model.to_empty(device=device if device is not None else "cpu")
        model.load_state_dict(state, strict=True)
        return model

    # -- files -----------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike[str], encoding: str = "packed") -> int:
        """Write the ticket atomically to ``path``; returns the file size in bytes.

        ``packed`` (the default) stores masks as bits and only the surviving values of masked
        tensors; ``dense`` stores BOOL masks and full tensors. Both load the same. Any registered
        encoding is accepted (:mod:`ticketfmt.format.encodings`).
        """
        tensors = encode_tensors(self.masks, {section: getattr(self, section) for section in WEIGHTS}, encoding)
        return write_tensors(path, tensors, self._metadata(encoding))

    @classmethod
    def load(cls, path: str | os.PathLike[str], verify: bool = True) -> Ticket:
        """Read a ticket file of either encoding; every check of ``docs/SPEC.md`` runs first.

        Example:
            >>> ticket = Ticket.load("tests/golden/cifar_resnet8-packed-v1.0.ticket")  # doctest: +SKIP
        """
        p = str(path)
        read = start_read(p, verify=verify)
        header = read.header
        # The checksums compute in background threads while the tensors are checked and decoded; a corrupted
        # payload is reported first (it explains any other error).
        with read.integrity_first():
            tensors = {name: array_to_tensor(a) for name, a in read.arrays.items()}
            try:
                spec = spec_from_json(header.arch)
            except UnknownArchError as e:
                raise TicketFormatError(f"arch {header.arch_id!r}: {e.message}", path=p, fix=e.fix) from None
            check_layers(p, header, tensors, spec)
            masks, sections = decode_tensors(header, tensors)
            try:
                ticket = cls(spec, masks, sections["init"], sections["trained"] or None, header.provenance,
                             header.results, _zero_pruned=False)  # check_layers saw +0.0 at every pruned position
            except MaskError as e:
                raise TicketFormatError(e.message, path=p, tensor=e.tensor, fix=e.fix) from None
        ticket.path, ticket.file_sha256, ticket.encoding = p, read.finish(), header.encoding
        return ticket


    @staticmethod
    def open(path: str | os.PathLike[str], verify: bool = True) -> TicketFile:
        """Open a ticket file for lazy access (a context manager, as safetensors' ``safe_open``).

        The header is checked against the architecture at once; ``masks``, ``init`` and
        ``trained`` decode (and check) one tensor at a time, on access. With ``verify`` the
        payload's sha256 is checked at open (the file is read, nothing decoded). See
        :class:`ticketfmt.ticketfile.TicketFile`.

        Example:
            >>> with Ticket.open("resnet50.ticket") as f:  # doctest: +SKIP
            ...     mask = f.masks["layer3.0.conv1.weight"]  # nothing else is decoded
        """
        from ticketfmt.ticketfile import TicketFile
        return TicketFile(path, verify=verify)

    # -- the Hugging Face Hub (huggingface_hub.ModelHubMixin) --------------------------------------
    def _save_pretrained(self, save_directory: Path) -> None:
        """``ticket.safetensors`` (the original bytes when unchanged), ``config.json`` and ``density.png``."""
        from ticketfmt.hub import hooks
        hooks.save_pretrained(self, save_directory)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | Path, *, force_download: bool = False,
                        token: str | bool | None = None, cache_dir: str | Path | None = None,
                        local_files_only: bool = False, revision: str | None = None, **model_kwargs: Any) -> Ticket:
        """A ticket from a Hub repo (``user/name``, at ``revision``), a folder of ``save_pretrained`` or a file.

        Downloads only ``ticket.safetensors`` and ``config.json`` through ``hf_hub_download`` (the
        standard cache; ``HF_HUB_OFFLINE=1`` reads from it). Hub failures raise one-line
        :class:`~ticketfmt.errors.HubError` s; a repo without a ticket (or with only pickles)
        raises :class:`~ticketfmt.errors.NotATicketRepoError`. ``verify=False`` skips the checksum.

        The ticket file is the whole truth: ``config.json`` is never turned into constructor
        arguments (unlike the mixin's default). It is fetched (the Hub counts downloads on it)
        and checked: one that contradicts the ticket (architecture, number of classes, arch id,
        sha256) raises :class:`~ticketfmt.errors.NotATicketRepoError`; a missing or unreadable
        one is ignored. ``verify=False`` skips that check too.

        Example:
            >>> ticket = Ticket.from_pretrained("user/cifar_resnet56-cifar10-ticket", revision="v1")  # doctest: +SKIP
        """
        from ticketfmt.hub import hooks

        source = str(pretrained_model_name_or_path)
        if os.path.isfile(source):
            return cls.load(source, verify=bool(model_kwargs.get("verify", True)))
        if not os.path.isdir(source) and (isinstance(pretrained_model_name_or_path, Path) or source.count("/") > 1
                                          or source.startswith((".", "/", "~"))
                                          or source.endswith((".ticket", ".safetensors"))):
            raise HubNotFoundError(f"{source}: no such file or folder",
                                   fix="give a Hub repo id (USER/NAME), a folder written by save_pretrained or a "
                                       ".ticket file")
        with hooks.hub_errors(repo_id=source, revision=revision, token=token):
            return cls._from_pretrained(model_id=source, revision=revision, cache_dir=cache_dir,
                                        force_download=force_download, local_files_only=local_files_only,
                                        token=token, **model_kwargs)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision: str | None, cache_dir: str | Path | None,
                         force_download: bool, local_files_only: bool, token: str | bool | None, verify: bool = True,
                         **model_kwargs: Any) -> Ticket:
        from ticketfmt.hub import hooks

        # Constructor arguments (e.g. num_classes from a config.json) are ignored: the ticket file is
        # authoritative; anything else is a caller's typo.
        unknown = sorted(set(model_kwargs) - set(cls._hub_mixin_init_parameters))
        if unknown:
            raise TypeError(f"Ticket.from_pretrained() got unexpected keyword argument(s) {unknown}")
        return hooks.from_pretrained(cls, model_id=model_id, revision=revision, cache_dir=cache_dir,
                                     force_download=force_download, local_files_only=local_files_only, token=token,
                                     verify=verify)

    def push_to_hub(self, repo_id: str, *, config: Any = None, commit_message: str | None = None,
                    private: bool | None = None, token: str | None = None, branch: str | None = None,
                    create_pr: bool | None = None, model_card_kwargs: dict[str, Any] | None = None,
                    allow_unverified: bool = False, card: str = "keep", force: bool = False,
                    allow_empty_layers: bool = False) -> str:
        """Publish the ticket in one commit; returns the commit URL. See :func:`ticketfmt.hub.push`.

        Refuses a ticket with no recorded result unless ``allow_unverified``; an existing
        ``README.md`` in the repo is kept unless ``card="overwrite"``, another library's files
        (a timm ``config.json``) unless ``force``; a fully pruned layer is refused unless
        ``allow_empty_layers``. ``config`` is ignored: ``config.json`` is derived from the ticket.

        Example:
            >>> ticket.push_to_hub("user/cifar_resnet56-cifar10-ticket", private=True)  # doctest: +SKIP
        """
        from ticketfmt.hub import hooks

        return hooks.push(self, repo_id, private=private, revision=branch, create_pr=bool(create_pr),
                          allow_unverified=allow_unverified, card=card, token=token, commit_message=commit_message,
                          card_kwargs=model_card_kwargs, force=force, allow_empty_layers=allow_empty_layers)

    def generate_model_card(self, *args: Any, **kwargs: Any) -> ModelCard:
        """The ticket's model card (the same however ``Ticket`` was imported).

        Example:
            >>> print(ticket.generate_model_card(repo_id="user/r20-ticket"))  # doctest: +SKIP
        """
        from ticketfmt.hub import hooks

        return hooks.model_card(self, **kwargs)


def _masks_of(spec: ArchSpec, state: PrunedState, masks: Mapping[str, torch.Tensor] | str | None
              ) -> dict[str, torch.Tensor]:
    """The masks of ``Ticket.from_model``: given, read from torch.nn.utils.prune, the non-zero weights, or all ones."""
    prunable = prunable_names(spec)
    if isinstance(masks, str) and masks != "nonzero":
        raise ValueError(f"masks must be a mapping, 'nonzero' or None, not {masks!r}")
    if state.masks and not (masks is None or masks == "nonzero"):
        raise MaskError("the model is pruned with torch.nn.utils.prune and masks were given too",
                        tensor=next(iter(state.masks)), fix="drop masks= to use the model's own weight_mask buffers, "
                                                            "or prune.remove() them first")
    dense = [n for n in state.masks if n not in prunable]
    if dense:
        raise MaskError(f"{dense[0]!r} is pruned with torch.nn.utils.prune, but {spec.id} tickets leave it dense "
                        "(the reference never prunes a VGG's output layer)", tensor=dense[0],
                        fix="prune.remove() that mask (its zeros stay in the weights) or do not prune that layer")
    if masks == "nonzero":  # the weights a pruned module computes with: prune's masks are included
        return {k: state.state[k] != 0 for k in prunable if k in state.state}
    if masks is None:
        return {k: state.masks[k] if k in state.masks else torch.ones_like(state.state[k], dtype=torch.bool)
                for k in prunable if k in state.state}
    return {k: v.detach().cpu().to(torch.bool) if v.dtype != torch.bool else v.detach().cpu()
            for k, v in masks.items()}


def _head_classes(model: nn.Module, arch: str | ArchSpec) -> int | None:
    """The number of classes a built model actually has (so ``from_model`` needs no ``num_classes``)."""
    for attr in ("num_classes",):
        n = getattr(model, attr, None)
        if isinstance(n, int):
            return n
    for name in ("fc", "classifier", "head"):
        m = getattr(model, name, None)
        if isinstance(m, nn.Sequential) and len(m):
            m = m[-1]
        if isinstance(m, nn.Linear):
            return m.out_features
        fc = getattr(m, "fc", None)
        if isinstance(fc, nn.Linear):
            return fc.out_features
    return None
