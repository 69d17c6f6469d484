"""Training: recipes, masked training, IMP with rewinding (:func:`find`), the evaluator (:func:`verify`).

Library code: no UI. Progress goes to a callback (``progress(event)``, a dict, see
:data:`ProgressFn`), metrics to a JSONL log, files are written atomically.

One job per module:

- :mod:`~ticketfmt.train.recipes`: the paper's training recipes (no torch);
- :mod:`~ticketfmt.train.fidelity`: the reference's IMP rules and the named options that depart from them;
- :mod:`~ticketfmt.train.dist`: devices, the torchrun process group, BatchNorm over the global batch;
- :mod:`~ticketfmt.train.loop`: :class:`Masker`, :class:`Trainer`, :func:`train_steps`, :func:`evaluate`, stops;
- :mod:`~ticketfmt.train.rundata`: a run's loaders (:func:`make_data`, the ``data_factory`` seam), their input
  pipeline following the network's input size and the data;
- :mod:`~ticketfmt.train.planning`: the plan a run announces before its first step (sizes, device, a timed estimate);
- :mod:`~ticketfmt.train.runfiles`: checkpoints, the metrics log, the run config;
- :mod:`~ticketfmt.train.imp`: the IMP run (:class:`ImpRun`) and :func:`find`;
- :mod:`~ticketfmt.train.retraining`: a ticket's training contract, the retraining plan and its record
  (shared by :func:`verify` and :func:`lmc`).
- :mod:`~ticketfmt.train.resumable`: a retraining's checkpoint (``verify(checkpoint=...)``), refused when another's;
- :mod:`~ticketfmt.train.verify`: :func:`verify` (one retraining, its result recorded).
- :mod:`~ticketfmt.train.lmc`: :func:`lmc`, linear mode connectivity (two copies, the error barrier).

Example:
    >>> from ticketfmt.train import find, verify  # doctest: +SKIP
    >>> run = find("cifar_resnet20", "cifar10", levels=5, out_dir="runs/r20", epochs=20)  # doctest: +SKIP
    >>> run.tickets[-1].name, run.accuracies[-1]  # doctest: +SKIP
    ('level-05.ticket', 90.1)
    >>> verified, record = verify(Ticket.load("runs/r20/level-05.ticket"), "cifar10")  # doctest: +SKIP
"""

from ticketfmt.train.dist import Dist, cpu_threads, init_distributed, resolve_device
from ticketfmt.train.fidelity import LEGACY, REFERENCE, ImpOptions, imp_keep, reference_prune, round_prune
from ticketfmt.train.imp import FindResult, ImpPlan, ImpRun, find
from ticketfmt.train.lmc import Connectivity, error_barrier, interpolate, lmc
from ticketfmt.train.loop import Masker, ProgressFn, Span, Stop, Trainer, evaluate, train_steps
from ticketfmt.train.recipes import PROTOCOLS, RECIPES, Recipe, get_recipe, parse_rewind, protocol, recipe_for
from ticketfmt.train.retraining import VerifyPlan, training_contract
from ticketfmt.train.rundata import DataFactory, RunData, make_data, test_subset_data
from ticketfmt.train.runfiles import CHECKPOINT, METRICS, RUN_CONFIG, level_name
from ticketfmt.train.verify import Verified, budget_of, verify

__all__ = [
    "ProgressFn", "Dist", "FindResult", "Trainer", "Masker", "Span", "Stop", "resolve_device", "init_distributed",
    "train_steps", "evaluate", "find", "verify", "Verified", "VerifyPlan", "training_contract", "ImpRun", "ImpPlan",
    "ImpOptions", "REFERENCE", "LEGACY", "reference_prune", "round_prune", "imp_keep", "level_name",
    "CHECKPOINT", "METRICS", "RUN_CONFIG", "Recipe", "RECIPES", "get_recipe", "recipe_for", "parse_rewind",
    "RunData", "DataFactory", "make_data", "test_subset_data", "budget_of", "protocol", "PROTOCOLS", "cpu_threads",
    "lmc", "Connectivity", "interpolate", "error_barrier",
]
