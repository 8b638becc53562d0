"""Resumable training state without pickle: nested dicts of tensors (model and optimizer state dicts,
counters, histories) flattened into one safetensors file, non-tensor leaves kept as JSON metadata.
Written atomically (temporary file + rename) so a kill mid-save never leaves a broken state.
Also what the GAN training scripts share: the EMA of a generator's weights and the loss plot.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

_SEP = "\x1f"


def _flatten(obj: Any, prefix: str, tensors: dict, meta: dict) -> None:
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj.detach().cpu().contiguous()
    elif isinstance(obj, dict):
        meta[prefix + _SEP + "__dict__"] = [str(type(k).__name__) for k in obj]  # key types, to restore ints
        for k, v in obj.items():
            _flatten(v, f"{prefix}{_SEP}{k}" if prefix else str(k), tensors, meta)
    else:
        meta[prefix] = obj


def save_state(path: str | os.PathLike, state: dict) -> None:
    """Save a nested dict (tensors, numbers, strings, lists) atomically as safetensors."""
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {}
    _flatten(state, "", tensors, meta)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={"state": json.dumps(meta)})
    os.replace(tmp, path)


def load_state(path: str | os.PathLike) -> dict:
    """Inverse of save_state (optimizer state dicts get their integer keys back)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = json.loads(f.metadata()["state"])
    tensors = load_file(str(path))
    root: dict = {}
    dict_marks = {k[: -len(_SEP + "__dict__")] for k in meta if k.endswith(_SEP + "__dict__")}

    def put(key: str, value: Any) -> None:
        parts = key.split(_SEP)
        node = root
        for i, p in enumerate(parts[:-1]):
            node = node.setdefault(p, {})
        node[parts[-1]] = value

    for k, v in meta.items():
        if not k.endswith(_SEP + "__dict__"):
            put(k, v)
    for k, v in tensors.items():
        put(k, v)
    for k in dict_marks:  # make sure empty dicts exist
        if k:
            parts = k.split(_SEP)
            node = root
            for p in parts:
                node = node.setdefault(p, {})

    def fix(node: Any) -> Any:
        if isinstance(node, dict):
            return {(int(k) if isinstance(k, str) and k.lstrip("-").isdigit() else k): fix(v) for k, v in node.items()}
        return node

    return fix(root)


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model for the parameters; buffers copied."""
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm, 1.0 - decay)
    for be, bm in zip(ema.buffers(), model.buffers()):
        be.copy_(bm)


def save_loss_plot(history: dict, path: str | os.PathLike, keys: tuple[str, ...] = ("d_loss", "g_loss"),
                   title: str = "GAN losses (moving average)") -> None:
    """Moving averages of history[key] against history["step"], written atomically as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = history.get("step", [])
    if not steps:
        return
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for k in keys:
        v = torch.tensor(history[k], dtype=torch.float32)
        k_s = max(1, len(v) // 50)
        sm = torch.nn.functional.avg_pool1d(v[None, None], k_s, 1, 0)[0, 0] if len(v) >= k_s else v
        ax.plot(steps[: len(sm)], sm.tolist(), label=k)
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
