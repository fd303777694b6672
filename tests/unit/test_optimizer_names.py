"""Issue 12 defect 2: optimizer ids are numbered group after group; names are guessed only where justified.

The reference is torch itself: the optimizer built by hand, whose ``param_groups`` hold the
very Parameter objects, so the true name of every id is known.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from torchscope.inspect.checkpoints import open_checkpoint
from torchscope.inspect.optimizer_names import optimizer_names


class Block(nn.Module):
    """One GPT-2 block's parameters (Conv1D-style weights: in x out)."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.c_attn = nn.Linear(d, 3 * d)
        self.attn_proj = nn.Linear(d, d)
        self.ln_2 = nn.LayerNorm(d)
        self.c_fc = nn.Linear(d, 4 * d)
        self.mlp_proj = nn.Linear(4 * d, d)


class GPT2Like(nn.Module):
    """GPT-2 small's 148 parameter tensors (12 blocks, tied lm_head), at a tiny width."""

    def __init__(self, d: int = 8, layers: int = 12) -> None:
        super().__init__()
        self.wte = nn.Embedding(50, d)
        self.wpe = nn.Embedding(16, d)
        self.h = nn.ModuleList(Block(d) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, 50, bias=False)
        self.lm_head.weight = self.wte.weight


def true_names(model: nn.Module, opt: torch.optim.Optimizer) -> dict[int, str]:
    by_id = {id(p): n for n, p in model.named_parameters()}
    flat = [p for g in opt.param_groups for p in g["params"]]
    return {i: by_id[id(p)] for i, p in enumerate(flat)}


def trained(model: nn.Module, groups: list[dict[str, object]], path: Path, opt_cls: type = torch.optim.AdamW,
            **kw: object) -> tuple[torch.optim.Optimizer, dict[int, str]]:
    opt = opt_cls(groups, **kw)  # type: ignore[call-arg]
    for _ in range(2):
        opt.zero_grad()
        for p in model.parameters():
            if p.requires_grad:
                p.grad = torch.randn_like(p)
        opt.step()
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, path)
    return opt, true_names(model, opt)


def decay_split(model: nn.Module) -> list[dict[str, object]]:
    # The usual recipe (HF Trainer, nanoGPT): matrices decay, biases and norm weights do not.
    decay = [p for _, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for _, p in model.named_parameters() if p.dim() < 2]
    return [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]


def test_weight_decay_split_gets_every_name_right(tmp_path: Path) -> None:
    model = GPT2Like()
    opt, truth = trained(model, decay_split(model), tmp_path / "gpt2.pt", lr=1e-3)
    ckpt = open_checkpoint(tmp_path / "gpt2.pt")
    assert ckpt.optimizers[0].names_from is None  # no param_names saved: the case of the issue
    assert len(truth) == 148 and len(opt.param_groups[1]["params"]) == 98
    got = optimizer_names(ckpt.optimizers[0], ckpt, GPT2Like())
    assert got["names"] == truth  # was 143 of 148 wrong when ids were mapped in model order
    assert set(got["status"].values()) == {"guess"} and got["warning"].startswith("guess")


def test_frozen_parameters_left_out_are_skipped(tmp_path: Path) -> None:
    model = GPT2Like(layers=3)
    for p in model.h[0].parameters():
        p.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in trainable if p.dim() >= 2]}, {"params": [p for p in trainable if p.dim() < 2], "lr": 0.0}]
    _, truth = trained(model, groups, tmp_path / "frozen.pt", lr=1e-3)
    ckpt = open_checkpoint(tmp_path / "frozen.pt")
    served = GPT2Like(layers=3)
    # Blocks have equal shapes: which one was left out, the state cannot tell...
    unsure = optimizer_names(ckpt.optimizers[0], ckpt, served)
    assert all(unsure["names"][i] == truth[i] for i in unsure["names"]) and "unknown" in unsure["status"].values()
    # ...but the served model frozen the same way says it, and then every name is determined.
    for p in served.h[0].parameters():
        p.requires_grad_(False)
    got = optimizer_names(ckpt.optimizers[0], ckpt, served)
    assert got["names"] == truth and "frozen parameters are taken as the ones left out" in got["warning"]


def test_ids_that_several_parameters_fit_are_unknown_not_guessed(tmp_path: Path) -> None:
    # a and b have one shape: which of them went to which group, the saved shapes cannot show.
    model = nn.Sequential(nn.Linear(4, 4, bias=False), nn.Linear(4, 4, bias=False), nn.Linear(4, 8, bias=False))
    a, b, c = model.parameters()
    _, truth = trained(model, [{"params": [a, c]}, {"params": [b], "lr": 0.01}], tmp_path / "same.pt", lr=1e-3)
    ckpt = open_checkpoint(tmp_path / "same.pt")
    got = optimizer_names(ckpt.optimizers[0], ckpt, model)
    assert got["names"] == {1: truth[1]} == {1: "2.weight"}  # c's place is forced; a's and b's are not
    assert got["status"] == {0: "unknown", 1: "guess", 2: "unknown"}
    assert "2 could be several (unknown)" in got["warning"]


def test_shapes_that_disagree_give_no_names(tmp_path: Path) -> None:
    model = GPT2Like(layers=2)
    trained(model, decay_split(model), tmp_path / "a.pt", lr=1e-3)
    ckpt = open_checkpoint(tmp_path / "a.pt")
    other = GPT2Like(d=12, layers=2)  # same structure, other widths
    got = optimizer_names(ckpt.optimizers[0], ckpt, other)
    assert got["names"] == {} and set(got["status"].values()) == {"unknown"}
    assert "do not fit" in got["warning"]


def test_sgd_without_momentum_has_no_shapes_and_names_only_what_order_forces(tmp_path: Path) -> None:
    model = GPT2Like(layers=1)
    _, truth = trained(model, [{"params": list(model.parameters())}], tmp_path / "sgd.pt", torch.optim.SGD, lr=0.1)
    ckpt = open_checkpoint(tmp_path / "sgd.pt")
    got = optimizer_names(ckpt.optimizers[0], ckpt, GPT2Like(layers=1))
    assert got["names"] == truth  # one group holding every parameter: the order is all there is
    assert "have no state to show a shape" in got["warning"]
