"""Checkpoints of a training run: ``<output_dir>/step_<N>/`` folders written atomically.

A checkpoint is accelerate's full training state (``save_state``: model, optimiser, scheduler,
RNG states) plus ``trainer_state.json`` (``completed_steps``, ``epoch``, the training history so
far and the best validation so far: ``best`` = ``{"metric", "epoch", "step", "value"}``) and,
when the run keeps the best epoch's weights, ``best_model.safetensors`` (the whole
:class:`~raw_isp.models.modeling.RawISPModel` state dict at that epoch), so that a resumed run
restores the same best model as an uninterrupted one. It is written into a temporary folder and
renamed when complete, so a killed run never leaves a half-written one; :func:`find_checkpoint`
refuses an incomplete or corrupt folder before any training.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_json, publish_folder

__all__ = [
    "CHECKPOINT_PREFIX",
    "STATE_FILE",
    "BEST_MODEL_FILE",
    "read_best_model",
    "checkpoint_step",
    "list_checkpoints",
    "find_checkpoint",
    "read_checkpoint_state",
    "save_checkpoint",
]

CHECKPOINT_PREFIX = "step_"
STATE_FILE = "trainer_state.json"
BEST_MODEL_FILE = "best_model.safetensors"


def checkpoint_step(folder: str | os.PathLike) -> int | None:
    """``N`` of a ``step_<N>`` folder name (also of its temporary ``.tmp_step_<N>``), else None."""
    name = Path(folder).name.removeprefix(".tmp_")
    digits = name[len(CHECKPOINT_PREFIX):]
    return int(digits) if name.startswith(CHECKPOINT_PREFIX) and digits.isdigit() else None


def list_checkpoints(output_dir: str | os.PathLike, temporary: bool = False) -> list[Path]:
    """The ``step_<N>`` folders of ``output_dir``, by step (with ``temporary``: the unfinished
    ``.tmp_step_<N>`` ones too)."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    pattern = f"*{CHECKPOINT_PREFIX}*" if temporary else f"{CHECKPOINT_PREFIX}*"
    found = [d for d in root.glob(pattern) if d.is_dir() and checkpoint_step(d) is not None
             and (temporary or not d.name.startswith("."))]
    return sorted(found, key=lambda d: (checkpoint_step(d), d.name))


def find_checkpoint(spec: str, output_dir: str | os.PathLike) -> str:
    """Resolve ``--resume_from_checkpoint`` (a folder, or "latest": the highest step in
    ``output_dir``) and check that the folder is a complete checkpoint; ``ValueError`` naming
    the folder otherwise."""
    if spec == "latest":
        found = list_checkpoints(output_dir)
        if not found:
            raise ValueError(f"--resume_from_checkpoint: no checkpoint ({CHECKPOINT_PREFIX}N folder) in {output_dir}")
        folder = found[-1]
    else:
        folder = Path(spec)
    if not folder.is_dir():
        raise ValueError(f"--resume_from_checkpoint {folder}: no such folder")
    try:
        read_checkpoint_state(folder)
    except (OSError, ValueError, KeyError, TypeError):
        raise ValueError(f"--resume_from_checkpoint {folder}: {STATE_FILE} is missing or unreadable; the checkpoint "
                         "is incomplete or corrupt") from None
    weights = list(folder.glob("model*.safetensors")) + list(folder.glob("pytorch_model*.bin"))
    if not weights or not (folder / "optimizer.bin").is_file():
        raise ValueError(f"--resume_from_checkpoint {folder}: model or optimizer state is missing; "
                         "the checkpoint is incomplete or corrupt")
    return str(folder)


def read_checkpoint_state(folder: str | os.PathLike) -> dict[str, Any]:
    """``{"completed_steps": int, "epoch": int, "history": list, "best": dict | None}`` of a
    checkpoint folder (checkpoints written before history and best were recorded: ``[]``, None)."""
    info = json.loads((Path(folder) / STATE_FILE).read_text())
    best = info.get("best")
    if best is not None and not {"metric", "epoch", "step", "value"} <= set(best):
        raise ValueError(f"{Path(folder) / STATE_FILE}: 'best' lacks metric, epoch, step or value")
    return {"completed_steps": int(info["completed_steps"]), "epoch": int(info["epoch"]),
            "history": list(info.get("history") or []), "best": best}


def read_best_model(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The best model's state dict saved in a checkpoint (CPU tensors), or None if it has none."""
    path = Path(folder) / BEST_MODEL_FILE
    if not path.is_file():
        return None
    from safetensors.torch import load_file

    return load_file(str(path))


def save_checkpoint(accelerator: Any, output_dir: str | os.PathLike, completed_steps: int, epoch: int,
                    history: list | None = None, best: dict[str, Any] | None = None,
                    best_state: dict[str, Any] | None = None) -> str:
    """Save the full training state into ``<output_dir>/step_<N>`` atomically (a temporary
    folder renamed when complete), with the run's ``history``, ``best`` validation record and
    ``best_state`` (a state dict, written as :data:`BEST_MODEL_FILE`). Runs in every process;
    returns the folder."""
    final = Path(output_dir) / f"{CHECKPOINT_PREFIX}{completed_steps}"
    tmp = Path(output_dir) / f".tmp_{CHECKPOINT_PREFIX}{completed_steps}"
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    if accelerator.is_main_process:
        if best_state is not None:
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in best_state.items()}, str(tmp / BEST_MODEL_FILE))
        state = {"completed_steps": completed_steps, "epoch": epoch, "history": history or [], "best": best}
        atomic_write_json(tmp / STATE_FILE, state, indent=None)
        publish_folder(tmp, final)
    accelerator.wait_for_everyone()
    return str(final)
