"""Writes the golden tickets of format 1.1 (run once; never regenerate them).

    python tests/golden/make_golden_v1_1.py [OUT_DIR]

The only architectures whose files say 1.1 are timm/torchvision VGGs with their hidden
classifier layers masked (about 60 MB at the smallest), so the 1.1 golden files are of the
test suite's toy family ``vtoy`` (``tests/toyfamily.py``): its hidden layer is prunable since
1.1, and its conv weight has 18 elements, so the packed mask has 6 padding bits (the
padding rule, SPEC edge case 3, which no zoo weight exercises).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from toyfamily import VersionedToy  # noqa: E402

from ticketfmt import Ticket, build_model  # noqa: E402
from ticketfmt.zoo import get_arch, register_family, unregister_family  # noqa: E402


def vtoy_ticket() -> Ticket:
    spec = get_arch("vtoy")
    init = build_model(spec, seed=0).state_dict()
    g = torch.Generator().manual_seed(0)
    masks = {k: torch.rand(init[k].shape, generator=g) < 0.5 for k in ("conv.weight", "hidden.weight")}
    trained = {k: v + 0.25 if v.is_floating_point() else v for k, v in build_model(spec, seed=1).state_dict().items()}
    return Ticket(spec, masks, init, trained, provenance={"method": "golden", "seed": 0},
                  results=[{"dataset": "none", "metric": "top1", "value": 0.1, "note": "golden file, not trained"}])


def main(out: Path = HERE) -> None:
    register_family(VersionedToy())
    try:
        ticket = vtoy_ticket()
        expected = {
            "arch": ticket.arch, "sparsity": ticket.sparsity,
            "kept": {k: v[0] for k, v in ticket.layer_density().items()},
            "masks": {k: m.reshape(-1).int().tolist() for k, m in ticket.masks.items()},
            "init_sum": {k: float(v.double().sum()) for k, v in ticket.init.items()},
            "trained_sum": {k: float(v.double().sum()) for k, v in (ticket.trained or {}).items()},
        }
        for encoding in ("packed", "dense"):
            ticket.save(out / f"vtoy-{encoding}-v1.1.ticket", encoding=encoding)
        (out / "expected-vtoy-v1.1.json").write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    finally:
        unregister_family("vtoy")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
