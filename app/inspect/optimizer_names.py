"""Which parameter each id of a saved optimizer state belongs to, when the file does not say.

torch numbers an optimizer's parameters group after group (``state_dict()`` ids 0..n0-1 are
group 0's, in the order the group's list had them, then group 1's...). Without
``param_names`` in the file, the only thing one may assume is how such lists are usually
built: by walking ``model.named_parameters()`` and sending each parameter to one group
(the weight-decay / no-decay split), so that *within* a group the ids follow the model's
order. With the saved state's shapes (``exp_avg`` has the parameter's shape), that gives a
matching problem: interleave the groups' shape sequences so that they spell the model's
parameters in order (parameters left out, e.g. frozen ones, may be skipped). Every
assignment consistent with that is found (forward and backward over the positions reached
in each group); an id whose parameter is the same in all of them gets that name, marked as
a guess, and one with several candidates is "unknown". If none fits, no name is given:
a wrong name shown as a name is worse than none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from torchscope.inspect.checkpoints import Checkpoint, OptimizerInfo

# Per-parameter states that have the parameter's own shape (Adafactor's factored ones do not).
SAME_SHAPE_STATES = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq", "momentum_buffer", "square_avg", "grad_avg",
                     "acc_delta", "sum", "ax", "prev", "step_size")
MAX_STATES = 400_000  # positions explored before giving up (a model whose groups cannot be told apart)

Shape = tuple[int, ...] | None  # None: the saved state says nothing about the shape
State = tuple[int, ...]  # how many ids of each group have been matched so far


def state_shapes(opt: OptimizerInfo, ckpt: Checkpoint) -> dict[int, Shape]:
    """Each id's parameter shape as its saved state shows it (None when it has no such state)."""
    out: dict[int, Shape] = {}
    for p in opt.params:
        shape: Shape = None
        for name in SAME_SHAPE_STATES:
            info = ckpt.tensors.get(p.tensors.get(name, ""))
            if info is not None:
                shape = info.shape
                break
        out[p.id] = shape
    return out


def match(groups: list[list[Shape]], params: list[tuple[str, tuple[int, ...]]],
          left_out: set[int] | None = None) -> list[list[set[int]]] | None:
    """For each group position, the indices of the model parameters it can be; None if nothing fits
    (or the search is too large to finish). ``left_out``: the parameters known not to be in the
    optimizer (then no other is skipped)."""
    n, total = len(params), sum(len(g) for g in groups)
    skips = n - total
    if skips < 0:
        return None
    start: State = tuple(0 for _ in groups)
    end: State = tuple(len(g) for g in groups)
    layers: list[set[State]] = [{start}]
    explored = 0
    for i, (_, shape) in enumerate(params):
        nxt: set[State] = set()
        for s in layers[-1]:
            for s2, _j in _moves(s, i, shape, groups, skips, left_out):
                nxt.add(s2)
        explored += len(nxt)
        if not nxt or explored > MAX_STATES:
            return None
        layers.append(nxt)
    if end not in layers[-1]:
        return None
    out: list[list[set[int]]] = [[set() for _ in g] for g in groups]
    alive: set[State] = {end}
    for i in range(n - 1, -1, -1):
        keep: set[State] = set()
        for s in layers[i]:
            for s2, j in _moves(s, i, params[i][1], groups, skips, left_out):
                if s2 in alive:
                    keep.add(s)
                    if j >= 0:
                        out[j][s[j]].add(i)
        alive = keep
    return out


def _moves(s: State, i: int, shape: tuple[int, ...], groups: list[list[Shape]], skips: int,
           left_out: set[int] | None) -> list[tuple[State, int]]:
    """Where parameter ``i`` can go from position ``s``: the next id of a group whose shape fits, or left out."""
    if left_out is not None:
        if i in left_out:
            return [(s, -1)]
        skips = 0
    out = []
    for j, g in enumerate(groups):
        p = s[j]
        if p < len(g) and (g[p] is None or g[p] == shape):
            out.append(((*s[:j], p + 1, *s[j + 1 :]), j))
    if i - sum(s) < skips:  # parameters not in the optimizer so far: at most n - total of them
        out.append((s, -1))
    return out


def optimizer_names(opt: OptimizerInfo, ckpt: Checkpoint, model: nn.Module | None) -> dict[str, Any]:
    """Names of an optimizer's parameter ids: saved (``param_names``), guessed (marked), or unknown."""
    ids = [p.id for p in opt.params]
    if opt.names_from == "param_names":
        return {"names_from": "param_names", "warning": None, "names": {p.id: p.name for p in opt.params},
                "status": dict.fromkeys(ids, "saved")}
    if model is None:
        return {"names_from": None, "warning": "the file has no param_names; pick a model to match them against",
                "names": {}, "status": dict.fromkeys(ids, "unknown")}
    named = list(model.named_parameters())
    params = [(name, tuple(p.shape)) for name, p in named]
    shapes = state_shapes(opt, ckpt)
    groups = [[shapes.get(pid) for pid in g["params"]] for g in opt.param_groups]
    # Parameters filtered out by `if p.requires_grad`: when the model's frozen ones are exactly as many
    # as the optimizer lacks, they are the ones left out (the usual reason); otherwise any may be.
    frozen = {i for i, (_, p) in enumerate(named) if not p.requires_grad}
    left_out = frozen if frozen and len(frozen) == len(params) - len(ids) else None
    found = match(groups, params, left_out)
    if found is None:
        why = (f"the optimizer holds {len(ids)} parameters but the model has {len(params)}" if len(ids) > len(params)
               else "its saved state's shapes do not fit this model's parameters group by group, in order "
                    "(another model, or groups not built in model order), or too many assignments fit")
        return {"names_from": None, "warning": f"no names: the file has no param_names, and {why}",
                "names": {}, "status": dict.fromkeys(ids, "unknown")}
    names: dict[int, str] = {}
    status: dict[int, str] = {}
    for g, cands in zip(opt.param_groups, found, strict=True):
        for pid, c in zip(g["params"], cands, strict=True):
            if len(c) == 1:
                names[pid] = params[next(iter(c))][0]
                status[pid] = "guess"
            else:
                status[pid] = "unknown"
    unknown = sum(1 for v in status.values() if v == "unknown")
    blind = sum(1 for s in shapes.values() if s is None)
    warning = (f"guess: the file has no param_names; each group was matched to the model's parameters in order, by the "
               f"shapes of its saved state: {len(names)} of {len(ids)} ids have exactly one consistent name"
               + (f", {unknown} could be several (unknown)" if unknown else "")
               + (f"; {blind} ids have no state to show a shape" if blind else "")
               + (f"; the model's {len(frozen)} frozen parameters are taken as the ones left out" if left_out else ""))
    return {"names_from": "group order and shapes (guess)", "warning": warning, "names": names, "status": status}


def jsonable(names: Mapping[str, Any]) -> dict[str, Any]:
    """The answer with string ids (JSON object keys)."""
    return {**names, "names": {str(k): v for k, v in names["names"].items()},
            "status": {str(k): v for k, v in names["status"].items()}}
