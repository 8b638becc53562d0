"""One way to save and load every model: a folder with config.json + model.safetensors + README.md
(model card), written by huggingface_hub's `PyTorchModelHubMixin`, atomically.

Where a model is loaded from, in order: a Hub repo when one is configured (`hub_repo=` or
$POSTER_STUDIO_HUB_REPO, optional $POSTER_STUDIO_HUB_REVISION), pulled through the local Hugging Face
cache; else `checkpoints/<name>/` of this repository (or $POSTER_STUDIO_CHECKPOINTS/<name>/).
One Hub repo holds all models, one sub-folder each (classifier/, generator/, transfer/ ...).
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Optional, TypeVar

from huggingface_hub import PyTorchModelHubMixin

from .errors import CheckpointError

REPO_ROOT = Path(__file__).resolve().parents[1]
HUB_REPO_ENV = "POSTER_STUDIO_HUB_REPO"
HUB_REVISION_ENV = "POSTER_STUDIO_HUB_REVISION"
CHECKPOINTS_ENV = "POSTER_STUDIO_CHECKPOINTS"
LIBRARY_NAME = "poster-studio"

MODEL_CARD = """---
{{ card_data }}
---

# Poster Studio — {{ model_name }}

{{ description }}

## Data
{{ data }}

## Metrics
{{ metrics }}

## Training
{{ training }}

## Use
```python
from poster_studio import hub
model = hub.load_model({{ class_name }}, "{{ model_name }}")
```
Part of [Poster Studio](https://github.com/poster-studio/poster-studio). Saved with `PyTorchModelHubMixin`.
"""


class HubMixin(PyTorchModelHubMixin, library_name=LIBRARY_NAME, tags=["poster-studio", "movie-posters"],
               license="apache-2.0", model_card_template=MODEL_CARD):
    """Base of every Poster Studio model: `save_pretrained` / `from_pretrained` / `push_to_hub` with our model card."""


T = TypeVar("T")


def checkpoints_dir() -> Path:
    return Path(os.environ.get(CHECKPOINTS_ENV) or REPO_ROOT / "checkpoints")


def _metrics_markdown(metrics: dict[str, Any]) -> str:
    if not metrics:
        return "Not measured yet."
    lines = ["| metric | value |", "|---|---|"]
    for k, v in metrics.items():
        if isinstance(v, float):
            v = f"{v:.4f}"
        elif isinstance(v, (dict, list)):
            v = json.dumps(v)
        lines.append(f"| {k} | {v} |")
    return "\n".join(lines)


def save_checkpoint(model: HubMixin, directory: str | os.PathLike, *, description: str = "", data: str = "",
                    training: str = "", metrics: Optional[dict[str, Any]] = None,
                    extra_files: Optional[dict[str, Any]] = None,
                    config_updates: Optional[dict[str, Any]] = None) -> Path:
    """Write `model` to `directory` atomically (a temporary sibling folder, then renames).

    `metrics` go to the model card and to metrics.json; `extra_files` maps file names to callables
    `fn(path)` that write additional artefacts (e.g. an embeddings index) into the same folder;
    `config_updates` changes config.json values decided after construction (e.g. tuned thresholds)."""
    def write(tmp: Path) -> None:
        config = dict(getattr(model, "_hub_mixin_config", None) or {})
        config.update(config_updates or {})
        model.save_pretrained(tmp, config=config or None, model_card_kwargs={
            "model_name": Path(directory).name, "class_name": type(model).__name__,
            "description": description or (type(model).__doc__ or "").strip(),
            "data": data or "See the training script.", "training": training or "See the training script.",
            "metrics": _metrics_markdown(metrics or {}),
        })
        (tmp / "metrics.json").write_text(json.dumps(metrics or {}, indent=2))
        for name, writer in (extra_files or {}).items():
            writer(tmp / name)

    return _replace_folder(Path(directory), write)


def add_files(directory: str | os.PathLike, files: dict[str, Any]) -> Path:
    """Add or replace side files (`{name: fn(path)}`, e.g. an exemplar bank) in an existing checkpoint folder,
    atomically like save_checkpoint: the folder is rebuilt beside it and swapped in."""
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"No checkpoint folder {directory} to add {', '.join(files)} to.")

    def write(tmp: Path) -> None:
        shutil.copytree(directory, tmp, dirs_exist_ok=True)
        for name, writer in files.items():
            writer(tmp / name)

    return _replace_folder(directory, write)


def _replace_folder(directory: Path, write) -> Path:
    """Run `write(tmp)` on a temporary sibling folder, then swap it in for `directory` (never half-written)."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        write(tmp)
        os.chmod(tmp, 0o755)
        old = None
        if directory.exists():
            old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
            os.replace(directory, old)
        os.replace(tmp, directory)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return directory


def load_side_files(folder: str | os.PathLike, tensors_file: str, meta_file: str, fix: str) -> tuple[dict, dict]:
    """(tensors, JSON) of a checkpoint's side-file pair (e.g. index.safetensors + index.json); CheckpointError
    naming the file and `fix` when one is missing or unreadable."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    for f in (folder / tensors_file, folder / meta_file):
        if not f.is_file():
            raise CheckpointError(f"Missing checkpoint file {f}: {fix}.")
    try:
        return load_file(str(folder / tensors_file)), json.loads((folder / meta_file).read_text())
    except (SafetensorError, ValueError, OSError) as exc:
        raise CheckpointError(f"Corrupt {tensors_file} / {meta_file} in {folder} ({exc}): {fix}.") from None


def hub_repo_from_env(hub_repo: Optional[str] = None) -> Optional[str]:
    return hub_repo or os.environ.get(HUB_REPO_ENV) or None


def pull(hub_repo: str, revision: Optional[str] = None, names: Optional[list[str]] = None) -> Path:
    """Download (or reuse from the HF cache) a pinned revision of the Hub repo; returns the snapshot folder."""
    from huggingface_hub import snapshot_download

    allow = [f"{n}/*" for n in names] if names else None
    try:
        return Path(snapshot_download(hub_repo, revision=revision or os.environ.get(HUB_REVISION_ENV),
                                      allow_patterns=allow))
    except Exception as exc:
        raise CheckpointError(
            f"Could not pull {hub_repo!r} from the Hugging Face Hub ({type(exc).__name__}: {exc}). "
            f"Check the repo id and network, or unset {HUB_REPO_ENV} to use the checkpoints/ folder."
        ) from exc


def resolve(name: str, *, hub_repo: Optional[str] = None, revision: Optional[str] = None,
            directory: Optional[str | os.PathLike] = None) -> Path:
    """Folder holding checkpoint `name`: explicit `directory`, else the Hub repo, else checkpoints/<name>."""
    if directory is not None:
        return Path(directory)
    repo = hub_repo_from_env(hub_repo)
    if repo:
        return pull(repo, revision, names=[name]) / name
    return checkpoints_dir() / name


def _fix_hint(name: str) -> str:
    return (f"Train it (see README: python train/…) to write checkpoints/{name}/, "
            f"or set {HUB_REPO_ENV} to a Hub repo that holds {name}/.")


def load_model(cls: type[T], name: str, *, hub_repo: Optional[str] = None, revision: Optional[str] = None,
               directory: Optional[str | os.PathLike] = None, **kwargs) -> T:
    """Load `cls` from checkpoint `name` (see `resolve`), verifying files, shapes and config.

    Raises CheckpointError naming the file and the fix."""
    folder = resolve(name, hub_repo=hub_repo, revision=revision, directory=directory)
    config, weights = folder / "config.json", folder / "model.safetensors"
    for f in (config, weights):
        if not f.is_file():
            raise CheckpointError(f"Missing checkpoint file {f}. {_fix_hint(name)}")
    try:
        json.loads(config.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"Corrupt checkpoint config {config}: {exc}. {_fix_hint(name)}") from None
    try:
        # huggingface_hub prints "Loading weights from local directory": keep stdout (JSON) and stderr (one-line
        # errors) of the CLI clean
        with contextlib.redirect_stdout(io.StringIO()):
            return cls.from_pretrained(str(folder), **kwargs)
    except Exception as exc:  # safetensors errors, size mismatches, bad config keys
        raise CheckpointError(
            f"Corrupt or mismatched checkpoint {weights} ({type(exc).__name__}: {str(exc)[:300]}). {_fix_hint(name)}"
        ) from None


def push(name: str, repo_id: str, *, private: bool = False, folder: Optional[str | os.PathLike] = None,
         commit_message: Optional[str] = None) -> str:
    """Upload checkpoints/<name>/ (config, weights, card, extras) into `<repo_id>/<name>/`; returns the commit URL."""
    from huggingface_hub import HfApi

    folder = Path(folder) if folder else checkpoints_dir() / name
    if not (folder / "model.safetensors").is_file():
        raise CheckpointError(f"Nothing to push: {folder / 'model.safetensors'} does not exist. {_fix_hint(name)}")
    api = HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
    info = api.upload_folder(repo_id=repo_id, folder_path=str(folder), path_in_repo=name,
                             commit_message=commit_message or f"Upload {name}")
    return str(getattr(info, "commit_url", info))
