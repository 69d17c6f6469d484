"""Writes the golden tickets of format 1.0. Run once per format version; never regenerate old ones.

    python tests/golden/make_golden.py [OUT_DIR]

The 1.0 files were made with the zoo's historic initialization, ``init="library"`` today (the
default is now the reference's); with it this script still writes them byte
for byte (given the same ``created_by``). Format 1.1 changed only the prunable set of
timm/torchvision VGGs, whose smallest ticket is about 60 MB: the 1.1 golden files are of a toy
family (``make_golden_v1_1.py``), and a 1.1 writer writes these 1.0 files byte for byte
(``tests/test_format.py`` checks it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


from ticketfmt import Ticket, build_model, prune

HERE = Path(__file__).resolve().parent


def main(out: Path = HERE) -> None:
    ticket = Ticket.from_model(build_model("cifar_resnet8", seed=0, init="library"), "cifar_resnet8",
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
        ticket.save(out / f"cifar_resnet8-{encoding}-v1.0.ticket", encoding=encoding)
    (out / "expected-v1.0.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
