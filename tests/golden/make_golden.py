"""Writes the golden tickets of format 1.0. Run once per format version; never regenerate old ones.

    python tests/golden/make_golden.py
"""

from __future__ import annotations

import json
from pathlib import Path


from ticketfmt import Ticket, build_model, prune

HERE = Path(__file__).resolve().parent


def main() -> None:
    ticket = Ticket.from_model(build_model("cifar_resnet8", seed=0), "cifar_resnet8",
                               provenance={"method": "golden", "seed": 0})
    ticket = prune(ticket, 0.5, method="magnitude")
    ticket.results.append({"dataset": "none", "metric": "top1", "value": 0.1, "note": "golden file, not trained"})
    expected = {
        "arch": ticket.arch,
        "sparsity": ticket.sparsity,
        "kept": {k: v[0] for k, v in ticket.layer_density().items()},
        "init_sum": {k: float(v.double().sum()) for k, v in ticket.init.items()},
    }
    for encoding in ("packed", "dense"):
        ticket.save(HERE / f"cifar_resnet8-{encoding}-v1.0.ticket", encoding=encoding)
    (HERE / "expected-v1.0.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
