"""Linear mode connectivity (`ticket lmc`, ticketfmt.train.lmc) and the reinit baseline (`ticket prune --method reinit`).

Issue 16, items 4-5. A cifar_resnet8 ticket on the suite's cifar10-mini, two copies of 16 steps each.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
import torch

from ticketfmt import Ticket, build_model, prune
from ticketfmt.errors import TicketError

DATASET = "cifar10-mini"
BUDGET = {"subset": 128, "epochs": 2, "batch_size": 16, "lr": 0.01, "rewind": "1it", "threads": 1, "device": "cpu"}
CLI_BUDGET = ["--subset", "128", "--epochs", "2", "--batch-size", "16", "--lr", "0.01", "--rewind", "1it",
              "--threads", "1", "--device", "cpu"]


@pytest.fixture(scope="module")
def ticket_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dense = Ticket.from_model(build_model("cifar_resnet8", seed=0), "cifar_resnet8",
                              provenance={"method": "init", "seed": 0, "level": 0, "init": "reference"})
    path = tmp_path_factory.mktemp("lmc") / "r8-50.ticket"
    prune(dense, 0.5, method="magnitude").save(path)
    return path


@pytest.fixture(scope="module")
def cli_run(ticket_path: Path) -> tuple[Path, Path, dict]:
    """`ticket lmc` once through the CLI (in-process): the written ticket, the plot and the JSON it printed."""
    from ticketfmt.cli import main

    out, plot = ticket_path.with_name("r8-lmc.ticket"), ticket_path.with_name("lmc.png")
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as exit:
        main(["lmc", str(ticket_path), "--dataset", DATASET, "--points", "11", *CLI_BUDGET, "-o", str(out),
              "--plot", str(plot), "--json"])
    assert exit.value.code in (0, None), stderr.getvalue()
    assert "plan: lmc cifar_resnet8" in stderr.getvalue() and "lmc point 11/11" in stderr.getvalue()
    return out, plot, json.loads(stdout.getvalue())


def test_lmc_cli_records_the_barrier(cli_run, ticket_path: Path) -> None:
    out, plot, shown = cli_run
    record = Ticket.load(out).results[-1]  # read back from the file
    assert record["metric"] == "error_barrier" and record["source"] == "lmc" and record["dataset"] == DATASET
    assert record["points"] == 11 and len(record["errors"]) == 11 and record["alphas"][0] == 0 and \
        record["alphas"][-1] == 1 and record["alphas"][5] == 0.5
    errors = record["errors"]
    assert record["value"] == round(max(errors) - (errors[0] + errors[-1]) / 2, 4) >= 0
    assert record["endpoints"] == [errors[0], errors[-1]] and record["data_orders"] == [9999, 10001]
    assert [c["top1"] for c in record["copies"]] == [round(100 - errors[0], 4), round(100 - errors[-1], 4)]
    assert (record["start_step"], record["epochs"], record["subset"], record["seed"]) == (1, 2, 128, 0)
    assert shown["value"] == record["value"] and shown["file"] == str(out)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    source = Ticket.load(ticket_path)
    again = Ticket.load(out)
    assert again.results[:-1] == source.results  # appended, nothing else changed
    assert all(torch.equal(again.masks[k], source.masks[k]) and torch.equal(again.init[k], source.init[k])
               for k in source.masks)


def test_lmc_library_reproduces_and_endpoints_are_the_trained_copies(cli_run, ticket_path: Path) -> None:
    from ticketfmt.train import evaluate, lmc, make_data

    seen: dict[str, object] = {}

    def keep(dataset: str, recipe, **kw):  # the run's own loaders, to evaluate its copies independently
        data = make_data(dataset, recipe, **kw)
        seen["test"] = data.test
        return data

    ticket = Ticket.load(ticket_path)
    res = lmc(ticket, DATASET, points=11, data_factory=keep, num_workers=0, **BUDGET)
    recorded = Ticket.load(cli_run[0]).results[-1]
    # the same seeds and thread count: the same curve as the CLI's run, exactly
    assert list(res.errors) == recorded["errors"] and res.barrier == recorded["value"]
    assert len(res.alphas) == 11 and res.ticket.results[-1] is res.record
    # the two copies differ (another data order), and the path's ends are exactly their errors
    a, b = res.trained
    assert any(not torch.equal(a[k], b[k]) for k in ticket.masks)
    for state, end in zip(res.trained, res.endpoints):
        model = ticket.build_model("init")
        model.load_state_dict(state)
        correct, total = evaluate(model, seen["test"], device=torch.device("cpu"))
        assert round(100.0 * (total - correct) / total, 4) == end
        assert all(bool((state[k][~m] == 0).all()) for k, m in ticket.masks.items())  # the mask held


def test_interpolate_and_barrier() -> None:
    from ticketfmt.train import error_barrier, interpolate

    a = {"w": torch.tensor([1.0, 2.0, 3.0]), "n": torch.tensor(5)}
    b = {"w": torch.tensor([3.0, 6.0, -1.0]), "n": torch.tensor(7)}
    mask = {"w": torch.tensor([True, True, False])}
    assert interpolate(a, b, 0.0, mask)["w"].tolist() == [1.0, 2.0, 0.0]
    assert interpolate(a, b, 1.0, mask)["w"].tolist() == [3.0, 6.0, 0.0]
    assert interpolate(a, b, 0.25)["w"].tolist() == [1.5, 3.0, 2.0] and interpolate(a, b, 0.5)["n"].item() == 5
    assert error_barrier([10.0, 30.0, 12.0]) == 19.0 and error_barrier([5.0, 4.0, 5.0]) == 0.0
    with pytest.raises(TicketError):
        error_barrier([1.0])


@pytest.mark.parametrize("args, message", [(["--points", "1"], "--points"),
                                           (["--data-orders", "3,3"], "--data-orders"),
                                           (["--data-orders", "3"], "--data-orders")])
def test_lmc_cli_refuses_bad_options(cli, ticket_path: Path, tmp_path: Path, args: list[str], message: str) -> None:
    out = tmp_path / "x.ticket"
    res = cli("lmc", ticket_path, "--dataset", DATASET, *args, "-o", out)
    assert res.code == 2 and message in res.stderr and not out.exists()


# ---------------------------------------------------------------------------------------------- reinit


def test_reinit_keeps_the_mask_and_contract_with_fresh_weights(ticket_path: Path, tmp_path: Path, cli) -> None:
    like = Ticket.load(ticket_path)
    out = tmp_path / "reinit.ticket"
    res = cli("prune", "--method", "reinit", "--like", ticket_path, "-o", out, "--json")
    assert res.code == 0, res.stderr
    assert json.loads(res.stdout)["seed"] == 10000  # the ticket's seed 0 + 10000
    fresh = Ticket.load(out)
    assert fresh.arch == like.arch and fresh.sparsity == like.sparsity and fresh.results == []
    assert all(torch.equal(fresh.masks[k], like.masks[k]) for k in like.masks)
    assert all(not torch.equal(fresh.init[k], like.init[k]) for k in like.masks)
    assert all(bool((fresh.init[k][~m] == 0).all()) for k, m in like.masks.items())
    step = fresh.provenance["pruning"][-1]
    assert step == {"method": "reinit", "sparsity": round(like.sparsity, 6), "seed": 10000, "init": "reference",
                    "like": "cifar_resnet8", "like_sha256": like.file_sha256}
    assert {k: fresh.provenance[k] for k in ("method", "seed", "level")} == {"method": "init", "seed": 0, "level": 0}
    # the weights are the zoo initializer's with that seed: the same as a fresh build, masked
    ref = build_model("cifar_resnet8", seed=10000).state_dict()
    assert all(torch.equal(fresh.init[k], ref[k] * like.masks[k]) for k in like.masks)

    # FILE may be given (its layers are checked); the library's prune() and an explicit seed agree
    again = tmp_path / "reinit-7.ticket"
    assert cli("prune", ticket_path, "--method", "reinit", "--like", ticket_path, "--seed", "7", "-o", again).code == 0
    lib = prune(like, method="reinit", like=like, seed=7)
    assert all(torch.equal(Ticket.load(again).init[k], lib.init[k]) for k in lib.init)


def test_reinit_refusals(ticket_path: Path, tmp_path: Path, cli) -> None:
    like = Ticket.load(ticket_path)
    out = tmp_path / "r.ticket"
    same = cli("prune", "--method", "reinit", "--like", ticket_path, "--seed", "0", "-o", out)  # like's own init
    assert same.code == 2 and "own initial weights" in same.stderr and not out.exists()
    assert cli("prune", "--method", "magnitude", "--like", ticket_path, "-o", out).code == 2  # FILE needed
    other = tmp_path / "r14.ticket"
    Ticket.from_model(build_model("cifar_resnet14", seed=0), "cifar_resnet14").save(other)
    assert cli("prune", other, "--method", "reinit", "--like", ticket_path, "-o", out).code == 2
    assert not out.exists()
    with pytest.raises(TicketError, match="--like"):
        prune(like, method="reinit")



def test_an_error_barrier_is_an_analysis_not_a_verification(ticket_path: Path) -> None:
    """An LMC record neither makes a ticket "verified" (push wants one) nor becomes a card benchmark result."""
    from ticketfmt.cards import benchmark_results

    barrier = {"dataset": "cifar10", "split": "test", "metric": "error_barrier", "value": 3.5, "source": "lmc",
               "protocol": "full"}
    top1 = {"dataset": "cifar10", "split": "test", "metric": "top1", "value": 90.0, "protocol": "full"}
    t = Ticket.load(ticket_path)
    only_barrier = t.replace(results=[barrier])
    assert not only_barrier.verified
    assert benchmark_results(only_barrier) == []
    both = t.replace(results=[barrier, top1])
    assert both.verified
    assert [r["metric"] for r in benchmark_results(both)] == ["top1"]
