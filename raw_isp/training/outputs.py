"""A run's output folder: the rules for using one, and what a finished run writes into it.

The rules follow the transformers examples:

* ``--output_dir`` must be a folder this process can write (not a file); checked before any data
  is loaded.
* A folder that is not empty belongs to someone: it is refused, unless the run continues the
  run in it (``--resume_from_checkpoint``: nothing is deleted) or replaces it
  (``--overwrite_output_dir``: the earlier run's files and checkpoints are deleted at the start,
  so a killed run never leaves an old model beside new checkpoints; files that are not a run's
  are kept and named in the log).
* ``--overwrite_output_dir`` replaces only a folder the project wrote: one that carries the
  marker of :mod:`raw_isp.training.folders` (written when a run claims its folder). A folder
  without it that is not empty is refused, naming its files; nothing in it is deleted.
* One run per folder: the main process holds the folder's lock
  (:func:`~raw_isp.training.folders.lock_output_dir`) from :func:`prepare_output_dir` to
  :func:`write_outputs`; a second process fails at once, naming the first.

:func:`write_outputs` writes the model, processor and ISP, ``train_history.json``,
``training_args.json`` (never the Hub token), the model card and, last, ``all_results.json``,
whose presence marks a finished run.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..atomic import atomic_write, atomic_write_json
from .arguments import TRAINING_ARGS_NAME, OptionError, RawTrainingArguments
from .checkpoints import CHECKPOINT_PREFIX, find_checkpoint, list_checkpoints
from .folders import MARKER_NAME, PROJECT_FILES, is_owned, lock_output_dir, mark_owned, unlock_output_dir, user_entries

__all__ = [
    "RESULTS_NAME",
    "HISTORY_NAME",
    "RUN_FILE_PATTERNS",
    "run_entries",
    "check_output_dir",
    "prepare_output_dir",
    "write_outputs",
    "train_summary",
]

logger = logging.getLogger(__name__)

RESULTS_NAME = "all_results.json"
HISTORY_NAME = "train_history.json"
#: What a run writes into its output folder (glob patterns), besides its checkpoints.
RUN_FILE_PATTERNS = (
    RESULTS_NAME, HISTORY_NAME, TRAINING_ARGS_NAME, "README.md", "config.json", "model*.safetensors",
    "model.safetensors.index.json", "pytorch_model*.bin", "preprocessor_config.json", "image_processing_*.py",
    "isp_config.json", "isp.safetensors", "*.tmp",
    "drift_synthesis",  # scripts/drift_synthesis.py's report of this model, by default inside its folder
)


def run_entries(folder: str | os.PathLike) -> list[Path]:
    """The entries of ``folder`` that belong to a training run (its files, its checkpoints and
    unfinished ones), sorted."""
    root = Path(folder)
    if not root.is_dir():
        return []
    found = {p for pattern in RUN_FILE_PATTERNS for p in root.glob(pattern)}
    found.update(list_checkpoints(root, temporary=True))
    return sorted(found)


def _describe(entries: list[Path], limit: int = 4) -> str:
    names = [p.name + ("/" if p.is_dir() else "") for p in entries]
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def check_output_dir(args: RawTrainingArguments) -> None:
    """Raise :class:`OptionError` if ``args.output_dir`` cannot take this run: it is a file (or
    under one), it cannot be written, or it is not empty and the run neither resumes nor
    overwrites. Resolves ``--resume_from_checkpoint`` (``"latest"``: the highest step) to a
    complete checkpoint folder. Creates the folder; writes and deletes one probe file."""
    out = Path(args.output_dir)
    if out.exists() and not out.is_dir():
        raise OptionError(f"--output_dir {out}: is a file, not a folder")
    ancestor = next((p for p in out.absolute().parents if p.exists()), None)
    if not out.exists() and ancestor is not None and not ancestor.is_dir():
        raise OptionError(f"--output_dir {out}: {ancestor} is a file, not a folder")
    if args.resume_from_checkpoint:
        try:
            args.resume_from_checkpoint = find_checkpoint(args.resume_from_checkpoint, out)
        except ValueError as err:
            raise OptionError(str(err)) from None
    elif out.is_dir():
        entries = user_entries(out, ignore=(".write_test_",))  # other processes' probes
        owned = is_owned(out)
        if entries and not args.overwrite_output_dir:
            what = (run_entries(out) if owned else []) or entries
            kind = "another run" if owned and run_entries(out) else "files"
            raise OptionError(
                f"--output_dir {out}: not empty, it holds {kind} ({_describe(what)}); use --overwrite_output_dir "
                "to replace it, --resume_from_checkpoint to continue the run in it, or another folder")
        if entries and not owned:
            raise OptionError(
                f"--output_dir {out}: --overwrite_output_dir replaces only a folder written by raw_isp (it carries "
                f"the marker {MARKER_NAME}); this one holds files raw_isp did not write ({_describe(entries)}), "
                "so nothing is deleted; choose an empty or another folder, or move the files away")
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out, prefix=".write_test_"):
            pass
    except OSError as err:
        raise OptionError(f"--output_dir {out}: cannot write there ({err.strerror or err})") from None


def prepare_output_dir(args: RawTrainingArguments, is_main_process: bool = True) -> None:
    """:func:`check_output_dir`, then, for ``--overwrite_output_dir`` without a resume, delete the
    earlier run's files and checkpoints (main process only). Other files stay; they are logged.

    The main process first takes the folder's lock (released by :func:`write_outputs`, or when
    the process ends) and checks again under it, then marks the folder as the project's.
    Raises :class:`~raw_isp.training.folders.FolderInUse` when another process holds it."""
    check_output_dir(args)
    if not is_main_process:
        return
    out = Path(args.output_dir)
    lock_output_dir(out)
    try:
        check_output_dir(args)  # another run may have filled it between the first check and the lock
    except OptionError:
        unlock_output_dir(out)
        raise
    mark_owned(out, "training run")
    if not args.overwrite_output_dir or args.resume_from_checkpoint:
        return
    old = run_entries(out)
    for entry in old:
        if entry.is_dir():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    if old:
        logger.info("--overwrite_output_dir: deleted the earlier run in %s (%s)", out, _describe(old))
    others = user_entries(out, ignore=(".write_test_",))
    if others:
        logger.warning("%s also holds %s, which is not a run's and is kept", out, _describe(others))


def train_summary(history: list[dict[str, Any]], images_per_step: int) -> dict[str, float]:
    """``train_loss``, ``train_runtime``, ``train_samples_per_second`` and
    ``train_steps_per_second`` of a run, as the transformers examples report them, from its
    logging windows (the ``history`` entries with ``train_loss``, which cover the whole run, a
    resumed one included).

    ``train_loss``: the mean loss per optimiser step (each window's mean loss weighted by its
    steps). ``train_runtime`` (seconds): the windows' wall time, validation and checkpoints
    inside the loop included, the final evaluation not (as ``Trainer``). A window's time is
    its ``seconds`` if logged, else its images (``images``, else ``steps * images_per_step``, the
    global batch; exact but for an epoch's short last batch) over its ``images_per_second``.
    Empty when nothing was logged.
    """
    windows = sorted((h for h in history if "train_loss" in h and "step" in h), key=lambda h: h["step"])
    previous = loss = steps = images = seconds = 0.0
    for h in windows:
        n = h["step"] - previous
        previous = h["step"]
        if n <= 0:
            continue
        count = float(h.get("images", n * images_per_step))
        rate = h.get("images_per_second") or 0.0
        elapsed = float(h["seconds"]) if "seconds" in h else (count / rate if rate > 0 else 0.0)
        loss, steps, images, seconds = loss + h["train_loss"] * n, steps + n, images + count, seconds + elapsed
    if not steps:
        return {}
    return {"train_loss": loss / steps, "train_runtime": round(seconds, 4),
            "train_samples_per_second": round(images / seconds, 3) if seconds > 0 else 0.0,
            "train_steps_per_second": round(steps / seconds, 3) if seconds > 0 else 0.0}


def write_outputs(args: RawTrainingArguments, result: Any) -> None:
    """Write a finished run (:class:`raw_isp.training.loop.TrainResult`) into ``args.output_dir``
    (main process; every process waits for it): model, processor and ISP (with the task),
    ``train_history.json``, ``training_args.json``, the model card, then ``all_results.json``;
    ``--push_to_hub`` uploads the folder without checkpoints."""
    from ..models.modeling import save_raw_model
    from .card import model_card

    accelerator = result.accelerator
    accelerator.wait_for_everyone()
    if not accelerator.is_main_process:
        return
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    global_batch = args.per_device_train_batch_size * args.gradient_accumulation_steps * accelerator.num_processes
    result.results.update({k: v for k, v in train_summary(result.history, global_batch).items()
                           if k not in result.results})
    model = accelerator.unwrap_model(result.model)
    save_raw_model(model, out, args.isp, args.camera_name, task=args.task)
    atomic_write_json(out / HISTORY_NAME, result.history, indent=1)
    args.to_json_file(out / TRAINING_ARGS_NAME)
    atomic_write(out / "README.md", model_card(args, result, model))
    atomic_write_json(out / RESULTS_NAME, result.results)
    mark_owned(out, "training run")
    unlock_output_dir(out)
    if args.push_to_hub:
        from huggingface_hub import HfApi

        repo_id = args.hub_model_id or out.name
        api = HfApi(token=args.hub_token)
        api.create_repo(repo_id, exist_ok=True)
        api.upload_folder(repo_id=repo_id, folder_path=str(out),
                          ignore_patterns=[f"{CHECKPOINT_PREFIX}*", f".tmp_{CHECKPOINT_PREFIX}*", ".write_test_*",
                                           *PROJECT_FILES])
