"""Change detection on live models (app/inspect/live.py): what a notebook user does, and what is seen."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch
from torch import nn

from torchscope.inspect import structure
from torchscope.inspect.live import Change, ModelWatch, TorchHooks, walk_modules
from torchscope.inspect.registry import ModelRegistry


class SmallConvNet(nn.Module):
    """Conv + BatchNorm + head: parameters, buffers, and a running-stats update on forward."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.bn(self.conv(x)).mean((2, 3)))


@pytest.fixture
def hooks() -> Iterator[TorchHooks]:
    h = TorchHooks()
    h.install()
    yield h
    h.remove()


@pytest.fixture
def net() -> SmallConvNet:
    torch.manual_seed(0)
    return SmallConvNet()


def watched(model: nn.Module, hooks: TorchHooks | None) -> ModelWatch:
    w = ModelWatch(model, hooks)
    assert w.check() is Change.NONE  # the baseline
    return w


def _train_step(net: SmallConvNet, opt: torch.optim.Optimizer) -> None:
    net(torch.randn(2, 1, 6, 6)).sum().backward()
    opt.step()
    opt.zero_grad()


EDITS: dict[str, tuple[Callable[[SmallConvNet], object], Change]] = {
    "nothing": (lambda m: None, Change.NONE),
    "in-place write under no_grad": (lambda m: torch.no_grad()(m.head.weight.mul_)(2), Change.VALUES),
    "nn.init on a layer": (lambda m: nn.init.zeros_(m.head.bias), Change.VALUES),
    "reset_parameters()": (lambda m: m.head.reset_parameters(), Change.VALUES),
    "load_state_dict": (lambda m: m.load_state_dict(SmallConvNet().state_dict()), Change.VALUES),
    "SGD step": (lambda m: _train_step(m, torch.optim.SGD(m.parameters(), lr=0.1)), Change.VALUES),
    "fused Adam step (no version bump)": (
        lambda m: _train_step(m, torch.optim.Adam(m.parameters(), lr=0.1, fused=True)), Change.VALUES,
    ),
    "forward in train mode (BatchNorm stats)": (lambda m: m(torch.randn(2, 1, 6, 6)), Change.VALUES),
    "eval()": (lambda m: m.eval(), Change.STRUCTURE),
    "freeze a layer": (lambda m: m.conv.requires_grad_(False), Change.STRUCTURE),
    "half()": (lambda m: m.half(), Change.STRUCTURE),
    "p.data = other": (lambda m: setattr(m.head.weight, "data", torch.zeros(3, 4)), Change.STRUCTURE),
    "replace a layer": (lambda m: setattr(m, "head", nn.Linear(4, 3)), Change.STRUCTURE),
    "add a module": (lambda m: m.add_module("extra", nn.ReLU()), Change.STRUCTURE),
    "delete a module": (lambda m: delattr(m, "bn"), Change.STRUCTURE),
    "register a buffer": (lambda m: m.register_buffer("mask", torch.ones(3)), Change.STRUCTURE),
    "new Parameter under the old name": (
        lambda m: setattr(m.head, "bias", nn.Parameter(torch.zeros(3))), Change.STRUCTURE,
    ),
}


@pytest.mark.parametrize("edit", list(EDITS))
def test_each_edit_is_seen_as_what_it_changes(edit: str, net: SmallConvNet, hooks: TorchHooks) -> None:
    fn, expected = EDITS[edit]
    w = watched(net, hooks)
    fn(net)
    assert w.check() is expected
    assert w.check() is Change.NONE  # seen once


def test_a_renamed_child_with_the_same_objects_is_a_structure_change(net: SmallConvNet, hooks: TorchHooks) -> None:
    w = watched(net, hooks)
    head = net._modules.pop("head")
    net.add_module("classifier", head)  # same objects, new name: only names tell
    assert w.check() is Change.STRUCTURE


def test_a_rename_is_seen_without_hooks_too(net: SmallConvNet) -> None:
    w = watched(net, None)
    net.add_module("classifier", net._modules.pop("head"))
    assert w.check() is Change.STRUCTURE


def test_a_layer_deleted_and_rebuilt_at_the_same_address_is_seen(net: SmallConvNet, hooks: TorchHooks) -> None:
    # Freed objects' ids are reused: the rebuilt layer can have the old one's ids (and storage).
    w = watched(net, hooks)
    for _ in range(20):
        del net.head
        net.head = nn.Linear(4, 3)
        assert w.check() is Change.STRUCTURE


def test_other_models_and_optimizers_in_the_process_are_not_changes(net: SmallConvNet, hooks: TorchHooks) -> None:
    w = watched(net, hooks)
    other = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))  # registrations elsewhere
    opt = torch.optim.Adam(other.parameters(), lr=0.1, fused=True)
    other(torch.randn(4, 3)).sum().backward()
    opt.step()
    assert w.check() is Change.NONE


def test_lazy_modules_are_watched_before_and_after_their_first_forward(hooks: TorchHooks) -> None:
    lazy = nn.Sequential(nn.LazyLinear(3), nn.ReLU())
    w = watched(lazy, hooks)  # UninitializedParameter has no shape nor storage yet
    assert w.check() is Change.NONE
    lazy(torch.randn(2, 5))
    assert w.check() is Change.STRUCTURE


def test_shared_modules_and_cycles_do_not_break_the_walk() -> None:
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.ReLU(), shared)
    assert len(walk_modules(model)) == 4  # the shared one twice: a fingerprint, not a count
    loop = nn.Sequential(nn.Linear(2, 2))
    loop.add_module("again", loop)  # a module tree that reaches itself
    assert {id(m) for m in walk_modules(loop)} == {id(m) for m in loop.modules()}
    w = watched(loop, None)
    with torch.no_grad():
        loop[0].weight.add_(1)
    assert w.check() is Change.VALUES


def test_hooks_only_count_and_are_removed() -> None:
    from torch.nn.modules import module as torch_module
    from torch.optim import optimizer as torch_optimizer

    before = (len(torch_module._global_module_registration_hooks), len(torch_optimizer._global_optimizer_post_hooks))
    h = TorchHooks()
    h.install()
    layer = nn.Linear(2, 2)
    assert h.registrations >= 2 and isinstance(layer.weight, nn.Parameter)  # returned nothing: kept as is
    h.remove()
    after = (len(torch_module._global_module_registration_hooks), len(torch_optimizer._global_optimizer_post_hooks))
    assert after == before and not h.installed


# --------------------------------------------------------------------------- LoadedModel.sync


def _live(model: nn.Module, hooks: TorchHooks) -> tuple[ModelRegistry, str]:
    registry = ModelRegistry()
    loaded = registry.add("net", "python", model)
    loaded.watch = watched(model, hooks)
    return registry, loaded.id


def test_structure_views_follow_the_live_model_and_values_keep_them(net: SmallConvNet, hooks: TorchHooks) -> None:
    registry, mid = _live(net, hooks)
    loaded = registry.get(mid)

    def trainable() -> int:
        return int(loaded.memo("summary", lambda: structure.summary(loaded.module))["parameters"]["trainable"])

    assert trainable() == sum(p.numel() for p in net.parameters())
    rev = loaded.revision
    _train_step(net, torch.optim.SGD(net.parameters(), lr=0.1))
    loaded = registry.get(mid)  # every lookup syncs
    assert loaded.revision == rev + 1 and "summary" in loaded._memo  # values changed: memo kept
    net.conv.requires_grad_(False)
    loaded = registry.get(mid)
    assert "summary" not in loaded._memo  # structure changed: memo dropped
    assert trainable() == sum(p.numel() for p in net.parameters() if p.requires_grad)


def test_originals_for_reset_survive_flags_but_not_replaced_tensors(net: SmallConvNet, hooks: TorchHooks) -> None:
    registry, mid = _live(net, hooks)
    loaded = registry.get(mid)
    loaded.ensure_original([net.head.weight])
    net.eval()
    assert registry.get(mid).modified  # a flag: reset still restores what the page changed
    net.head = nn.Linear(4, 3)  # the owner replaced the layer: the page's originals do not apply
    assert not registry.get(mid).modified and loaded.reset() == 0


def test_models_loaded_by_the_cli_are_not_fingerprinted(net: SmallConvNet) -> None:
    registry = ModelRegistry()
    loaded = registry.add("net", "spec", net)
    net.eval()
    assert registry.get(loaded.id).revision == 0  # only the server's own actions count there
    loaded.touched()
    assert loaded.sync() == 1


def test_show_replaces_by_name_and_iteration_is_a_snapshot() -> None:
    registry = ModelRegistry()
    first = registry.add("Net", "python", nn.Linear(2, 2))
    registry.add("Other", "python", nn.Linear(2, 2))
    first.touched()
    again = registry.add("Net", "python", nn.Linear(3, 3), replace=True)
    assert again.id == first.id and [m.id for m in registry] == ["net", "other"]
    assert again.revision == 2 and again.version == 1  # a page open on the old one is out of date
    assert registry.get("net") is again
    for _ in registry:  # adding while iterating (a request listing models while show() adds one)
        registry.add("Third", "python", nn.Linear(2, 2))
    assert len(registry) == 4


def test_requests_queued_on_the_lock_share_one_check(
    net: SmallConvNet, hooks: TorchHooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    from torchscope.inspect import registry as registry_module

    registry, mid = _live(net, hooks)
    loaded = registry.get(mid)
    assert loaded.watch is not None
    calls: list[int] = []
    check = loaded.watch.check
    monkeypatch.setattr(loaded.watch, "check", lambda: calls.append(1) or check())
    asked = threading.Semaphore(0)
    clock = time.monotonic

    def monotonic() -> float:
        asked.release()  # sync() read the clock: this request has "arrived"
        return clock()

    monkeypatch.setattr(registry_module.time, "monotonic", monotonic)
    with loaded.lock:  # a page load: five requests arrive while another one holds the lock
        threads = [threading.Thread(target=loaded.sync) for _ in range(5)]
        for t in threads:
            t.start()
        for _ in threads:
            assert asked.acquire(timeout=10)
    for t in threads:
        t.join()
    assert len(calls) == 1  # the first one in checks; it started after every other one arrived
    monkeypatch.undo()
    with torch.no_grad():
        net.head.weight.add_(1)
    rev = loaded.revision
    assert loaded.sync() == rev + 1  # a call made after a change always checks again


def test_content_stamp_sees_writes_that_version_counters_miss() -> None:
    from torchscope.inspect.live import content_stamp

    big = torch.randn(1000, 1000)
    small = torch.zeros(6)
    before = content_stamp([big, small])
    assert content_stamp([big, small]) == before  # the same values: the same stamp
    small.data.fill_(1.0)  # an even count of equal values: their xor is 0 again, the norm is not
    assert content_stamp([small], bits=False) != content_stamp([torch.zeros(6)], bits=False)
    one = content_stamp([big])
    big.data[3, 4] += 1e-6  # below the norm's float32 rounding: only the bits see it
    assert content_stamp([big]) != one
    assert content_stamp([big], bits=False) == content_stamp([big], bits=False)
    odd = [torch.tensor([float("nan")]), torch.empty(3, device="meta"), torch.ones(2, dtype=torch.int64)]
    stamp = content_stamp(odd)
    assert stamp != content_stamp(odd)  # NaN: never equal, so never reused
    assert stamp[1] is None and stamp[2] == content_stamp([odd[2]])[0]
