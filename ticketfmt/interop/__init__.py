"""Interoperability with other lottery-ticket tools.

- :mod:`ticketfmt.interop.torch_prune`: :func:`apply_masks` puts a ticket on a model through
  ``torch.nn.utils.prune`` (``weight_orig`` + ``weight_mask``), loading the ticket's init.
- :mod:`ticketfmt.interop.export`: :func:`export_state_dict` / :func:`save_export` write a
  ticket's masked weights as the plain state dict of a timm or torchvision model (``strict=True``
  loads) or in ``torch.nn.utils.prune``'s form (:func:`prepare_torch_prune` readies a model for it).
- :mod:`ticketfmt.interop.weights`: :func:`ticket_from_weights` (a safetensors state dict) and
  :func:`ticket_from_pretrained` (timm's or torchvision's pretrained loader) make level-0 tickets.
- :mod:`ticketfmt.interop.open_lth`: :func:`import_open_lth` turns a run of
  facebookresearch/open_lth or of ElasticLTH (a level, or a change_depth branch) into a ticket,
  with the run's recipe translated (:mod:`ticketfmt.interop.open_lth_hparams`) and its names
  mapped (:mod:`ticketfmt.interop.open_lth_models`).

Example:
    >>> from ticketfmt import Ticket, build_model
    >>> from ticketfmt.interop import apply_masks
    >>> ticket = Ticket.from_model(build_model("cifar_resnet8", seed=0), "cifar_resnet8")
    >>> model = apply_masks(ticket.build_model(), ticket)
"""

from ticketfmt.interop.export import TARGETS, Exported, export_state_dict, loader_code, prepare_torch_prune, save_export
from ticketfmt.interop.open_lth import OpenLTHRun, import_open_lth
from ticketfmt.interop.open_lth_hparams import (iterations_per_epoch, open_lth_recipe, open_lth_seed,
                                                parse_open_lth_hparams, read_open_lth_hparams)
from ticketfmt.interop.open_lth_models import arch_from_open_lth, infer_open_lth_arch, open_lth_key_map
from ticketfmt.interop.torch_prune import apply_masks
from ticketfmt.interop.weights import read_weights, ticket_from_pretrained, ticket_from_weights

__all__ = ["apply_masks", "import_open_lth", "OpenLTHRun", "open_lth_key_map", "arch_from_open_lth",
           "infer_open_lth_arch", "read_open_lth_hparams", "parse_open_lth_hparams", "open_lth_recipe",
           "open_lth_seed", "iterations_per_epoch", "TARGETS", "Exported", "export_state_dict", "save_export",
           "loader_code", "prepare_torch_prune", "read_weights", "ticket_from_weights", "ticket_from_pretrained"]
