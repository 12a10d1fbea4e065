"""Error types with the exit code the CLI gives for each.

One place decides exit codes so every command reports failures the same way: 1 for bad input or a failed check,
2 for usage errors (an option value that can never work), missing weights or runs that cannot be compared (the user
must fix the command, fetch or choose something first).
"""

from __future__ import annotations

import os
from pathlib import Path

from molebench.weight_sizes import with_size


def hf_hub_cache() -> Path:
    """The Hugging Face hub cache folder, by huggingface_hub's rule (HF_HUB_CACHE, else HF_HOME/hub, else
    XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub), read without importing it."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or os.path.join(os.environ.get("XDG_CACHE_HOME") or "~/.cache", "huggingface")
    return Path(home).expanduser() / "hub"


def fetch_command(repo_id: str, files: list[str] | tuple[str, ...] = ()) -> str:
    """The shell command that puts `files` of `repo_id` (all of it when empty) into the Hugging Face cache (here, on
    the ground floor, because the missing-weights message quotes it; molebench.assets.fetch builds on it)."""
    return " ".join(["hf", "download", repo_id, *files])


class MolebenchError(Exception):
    """A failure the user can act on; the CLI prints the message (no traceback) and exits with `exit_code`."""

    exit_code = 1


class InputError(MolebenchError):
    """Malformed or unreadable input: prompt files, images, source data, run folders."""


class UsageError(InputError):
    """A command's option or argument, or an API keyword, has a value that can never work (out of range, malformed,
    an unknown name), found before anything is read or written: exit 2 like click's own usage errors, with the
    command's help named."""

    exit_code = 2


class MissingWeightsError(MolebenchError):
    """Weights for a registered model or scorer are not on this machine."""

    exit_code = 2

    def __init__(self, what: str, repo_id: str, files: list[str] | None = None, hint: str = "",
                 fetch: str | None = None, hub: bool = True) -> None:
        """`repo_id` names a Hugging Face repository; for files published elsewhere give `fetch` (the command that
        gets them) and `repo_id` as a description of the origin (`hub=False`)."""
        self.repo_id = repo_id
        self.files = list(files or [])
        shown = ", ".join(with_size(repo_id, f) for f in self.files) if self.files else "the repository snapshot"
        self.fetch = fetch = fetch or fetch_command(repo_id, self.files)
        if hub:
            message = (
                f"missing weights for {what}: {shown} from the Hugging Face repository '{repo_id}' is not in the "
                f"local cache and no local path was given.\n  get it on a connected machine with:  {fetch}\n"
                f"  (then copy that machine's Hugging Face cache into {hf_hub_cache()} here), or point molebench at a "
                f"local copy"
            )
        else:
            message = (f"missing weights for {what}: {shown} ({repo_id}) is not on this machine.\n"
                       f"  get it on a connected machine with:  {fetch}\n  then copy the file here, or point molebench "
                       f"at a local copy")
        if hint:
            message += f": {hint}"
        super().__init__(message)


class AllMissingWeightsError(MissingWeightsError):
    """Weights of several models or scorers a command needs are missing: one message naming each, so they can all
    be fetched in one go instead of one failed run at a time."""

    def __init__(self, errors: list[MissingWeightsError]) -> None:
        self.errors = list(errors)
        self.repo_id = ", ".join(e.repo_id for e in errors if e.repo_id)
        self.files = [f for e in errors for f in e.files]
        MolebenchError.__init__(self, f"{len(errors)} sets of weights this command needs are missing:\n"
                                + "\n".join(f"({i}) {e}" for i, e in enumerate(errors, start=1)))


def raise_missing(errors: list[MissingWeightsError]) -> None:
    """Raise the one missing-weights error, or all of them as one (nothing when the list is empty)."""
    errors = [one for e in errors for one in (e.errors if isinstance(e, AllMissingWeightsError) else [e])]
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise AllMissingWeightsError(errors)


class IncompatibleRunsError(MolebenchError):
    """Runs (or a run folder and a new command) that must not be mixed or compared."""

    exit_code = 2


class RunInUseError(MolebenchError):
    """Another command holds the run folder's lock (it writes there now); wait for it or pass --wait."""

    exit_code = 2


class StorageError(MolebenchError):
    """The file system refused a write (disk full, read-only folder, no permission); finished files are kept."""


class MissingPipelineError(MolebenchError):
    """The installed diffusers lacks the pipeline class a registered model needs (install another version first)."""

    exit_code = 2


class MissingExternalWeightsError(MissingWeightsError):
    """Weights published outside the Hugging Face hub (a project page or a cloud-drive link): the message names the
    file, where its authors publish it, and how to point molebench at a local copy or a user's hub mirror."""

    def __init__(self, what: str, files: list[str], origin: str, hint: str = "") -> None:
        self.repo_id = ""
        self.files = list(files)
        shown = ", ".join(with_size("", f) for f in self.files)
        message = (f"missing weights for {what}: {shown} is not on this machine. It is not on the Hugging Face hub; "
                   f"its authors publish it via {origin}.")
        if hint:
            message += f"\n  {hint}"
        MolebenchError.__init__(self, message)
