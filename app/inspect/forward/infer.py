"""Example inputs inferred where that is honest, and said so (``"source": "inferred"``).

Two rules, tried in order; anything else asks the user (never a silent guess):

1. Hugging Face models: ``dummy_inputs`` when the model's own class defines them (the
   base ``PreTrainedModel.dummy_inputs`` is text-only, wrong for vision models), else
   token ids from the config's vocabulary (``input_ids``) or images of the config's
   ``num_channels`` x ``image_size`` (``pixel_values``).
2. The first ``Conv1d/2d/3d``, ``Embedding`` or ``Linear`` in ``named_modules()`` order
   says what the model eats, when ``forward`` takes exactly one required argument. A
   convolution does not say its spatial size: 224 is tried, then 32 and 28 (CIFAR, MNIST),
   and the answer says which one fit.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from torchscope.inspect.forward.spec import InputSpec, TensorSpec, spec_of_values

SEQ_LEN = 16  # tokens when nothing says how many
SPATIAL = {1: (224, 32, 28), 2: (224, 32, 28), 3: (16,)}  # tried in order (3d: frames = height = width / 7)
_CONVS: dict[type[nn.Module], int] = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}


@dataclass(frozen=True)
class Inferred:
    """Inputs inferred for a model: candidates in the order to try, and how they were found."""

    candidates: tuple[InputSpec, ...]
    note: str
    # Real values that come with the first candidate (a model's own dummy_inputs), if any.
    values: tuple[tuple[Any, ...], dict[str, Any]] | None = None
    notes: tuple[str, ...] = field(default=())  # one per candidate after the first


@dataclass(frozen=True)
class NotInferred:
    """Why no inputs could be inferred (shown in the 409 and on the page)."""

    reason: str


def _forward_params(module: nn.Module) -> list[inspect.Parameter] | None:
    try:
        sig = inspect.signature(module.forward)
    except (TypeError, ValueError):
        return None
    return [
        p for p in sig.parameters.values() if p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    ]


def _is_hf(module: nn.Module) -> bool:
    return any(c.__name__ == "PreTrainedModel" for c in type(module).__mro__) and hasattr(module, "config")


def _place(params: list[inspect.Parameter], tensor: TensorSpec) -> InputSpec:
    """Pass the tensor as forward's first argument: by name when it is keyword-only."""
    first = params[0]
    if first.kind == inspect.Parameter.KEYWORD_ONLY:
        return InputSpec((), {first.name: tensor})
    return InputSpec((tensor,), {})


def _hf(module: nn.Module, names: set[str]) -> Inferred | None:
    config = module.config
    owner = next((c for c in type(module).__mro__ if "dummy_inputs" in c.__dict__), None)
    if owner is not None and owner.__name__ != "PreTrainedModel":
        try:
            dummy = module.dummy_inputs
        except Exception:  # a model's dummy_inputs may need things it does not have (e.g. on meta)
            dummy = None
        if isinstance(dummy, dict) and dummy and all(isinstance(v, torch.Tensor) for v in dummy.values()):
            values: tuple[tuple[Any, ...], dict[str, Any]] = ((), dict(dummy))
            return Inferred((spec_of_values(*values),), f"{type(module).__name__}.dummy_inputs", values)
    vocab = getattr(config, "vocab_size", None)
    if "input_ids" in names and isinstance(vocab, int) and vocab > 0:
        limit = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
        length = min(SEQ_LEN, limit) if isinstance(limit, int) and limit > 0 else SEQ_LEN
        ids = TensorSpec((1, length), torch.int64, 0, vocab)
        kwargs: dict[str, Any] = {"input_ids": ids}
        note = f"token ids from the config's vocabulary (vocab_size={vocab:,}), 1 sequence of {length}"
        if getattr(config, "is_encoder_decoder", False) and "decoder_input_ids" in names:
            kwargs["decoder_input_ids"] = ids
            note += ", as encoder and decoder input"
        return Inferred((InputSpec((), kwargs),), note)
    channels, size = getattr(config, "num_channels", None), getattr(config, "image_size", None)
    if isinstance(size, list | tuple) and len(size) == 2:
        size = size[0] if size[0] == size[1] else None
    if "pixel_values" in names and isinstance(channels, int) and isinstance(size, int):
        pixels = TensorSpec((1, channels, size, size), _float_dtype(module))
        return Inferred((InputSpec((), {"pixel_values": pixels}),), f"1 image of the config's {channels}x{size}x{size}")
    return None


def _float_dtype(module: nn.Module) -> torch.dtype:
    for p in module.parameters():
        if p.dtype.is_floating_point:
            return p.dtype
    return torch.float32


_NORMS = (
    nn.modules.batchnorm._NormBase,
    nn.LayerNorm,
    nn.GroupNorm,
    nn.RMSNorm,
    nn.LocalResponseNorm,
)


def _first_layer(module: nn.Module) -> tuple[str, nn.Module] | str:
    """The first layer with parameters that says what the model takes, or why there is none.

    Normalisation layers keep their input's shape, so a LayerNorm or BatchNorm before the
    first Linear/Conv is passed over; any other layer with parameters first (an LSTM, an
    attention block) means the model's input is not what the Linear/Conv after it takes.
    The root's own parameters (a positional embedding) are not a layer.
    """
    for path, m in module.named_modules():
        if path == "" and any(True for _ in m.children()):
            continue
        if not any(True for _ in m.parameters(recurse=False)):
            continue
        if isinstance(m, nn.modules.lazy.LazyModuleMixin):
            return f"the first layer ({path or '(model)'} = {type(m).__name__}) is lazy: its input size is not known before a forward"
        if isinstance(m, _NORMS):
            continue
        if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Conv3d | nn.Embedding | nn.Linear):
            return path, m
        return (
            f"the first layer ({path or '(model)'} = {type(m).__name__}) is not a Conv1d/2d/3d, Embedding or "
            "Linear, so it does not say what the model takes"
        )
    return "the model has no layer with parameters to infer its input from"


def infer_inputs(module: nn.Module) -> Inferred | NotInferred:
    """Inputs for ``module`` where the model itself says what they are; else the reason why not."""
    if type(module).forward is nn.Module.forward:
        return NotInferred(f"{type(module).__name__} has no forward() method")
    params = _forward_params(module)
    if params is None:
        return NotInferred(f"cannot read the signature of {type(module).__name__}.forward")
    if _is_hf(module):
        found = _hf(module, {p.name for p in params})
        if found is not None:
            return found
    required = [p for p in params if p.default is inspect.Parameter.empty]
    if not params or len(required) > 1:
        what = ", ".join(p.name for p in required) if required else "no arguments"
        return NotInferred(
            f"{type(module).__name__}.forward takes {what}: only a model with one input can be inferred"
        )
    first = _first_layer(module)
    if isinstance(first, str):
        return NotInferred(first)
    path, layer = first
    where = f"{path or '(model)'} = {type(layer).__name__}"
    weight = getattr(layer, "weight", None)
    dtype = weight.dtype if isinstance(weight, torch.Tensor) and weight.dtype.is_floating_point else torch.float32
    target = required or params
    for cls, dims in _CONVS.items():
        if isinstance(layer, cls) and isinstance(layer, nn.modules.conv._ConvNd):
            c = layer.in_channels
            sizes = SPATIAL[dims]
            if dims == 3:
                cands = [TensorSpec((1, c, s, s * 7, s * 7), dtype) for s in sizes]
            else:
                cands = [TensorSpec((1, c, *([s] * dims)), dtype) for s in sizes]
            notes = tuple(f"spatial size {s} (a guess: the layer does not say)" for s in sizes)
            return Inferred(
                tuple(_place(target, t) for t in cands),
                f"{where} takes {c} channel(s); batch 1, {notes[0]}",
                notes=tuple(f"{where} takes {c} channel(s); batch 1, {n}" for n in notes[1:]),
            )
    if isinstance(layer, nn.Embedding):
        ids = TensorSpec((1, SEQ_LEN), torch.int64, 0, layer.num_embeddings)
        return Inferred(
            (_place(target, ids),),
            f"{where} takes token ids in [0, {layer.num_embeddings:,}); 1 sequence of {SEQ_LEN} (length is a guess)",
        )
    if isinstance(layer, nn.Linear):
        return Inferred(
            (_place(target, TensorSpec((1, layer.in_features), dtype)),),
            f"{where} takes {layer.in_features} features; batch 1",
        )
    raise AssertionError(f"unexpected layer {where}")  # _first_layer returns only the classes above
