"""Error types with the exit code the CLI gives for each.

One place decides exit codes so every command reports failures the same way: 1 for bad input or a failed check,
2 for missing weights or runs that cannot be compared (the user must fetch or choose something first).
"""

from __future__ import annotations


class MolebenchError(Exception):
    """A failure the user can act on; the CLI prints the message (no traceback) and exits with `exit_code`."""

    exit_code = 1


class InputError(MolebenchError):
    """Malformed or unreadable input: prompt files, images, source data, run folders."""


def fetch_command(repo_id: str, files: list[str] | tuple[str, ...] = ()) -> str:
    """The shell command that puts `files` of `repo_id` (all of it when empty) into the Hugging Face cache."""
    return " ".join(["hf", "download", repo_id, *files])


# A diffusers pipeline is model_index.json plus one folder per component. Repositories also hold single-file
# checkpoints at their root (4-8 GB each), fp16 / non-EMA duplicates and other frameworks' weights, none of which
# `from_pretrained` reads: the fetch command leaves them out.
PIPELINE_EXCLUDES = ("*.bin", "*.ckpt", "*.fp16.*", "*non_ema*", "*.onnx*", "*.msgpack", "*.h5")


def pipeline_fetch_command(repo_id: str, excludes: tuple[str, ...] = PIPELINE_EXCLUDES) -> str:
    """The command that fetches the whole diffusers pipeline of `repo_id` (every component folder), nothing else."""
    patterns = ['--include "model_index.json"', '--include "*/*"', *(f'--exclude "{p}"' for p in excludes)]
    return " ".join([fetch_command(repo_id), *patterns])


class MissingWeightsError(MolebenchError):
    """Weights for a registered model or scorer are not on this machine."""

    exit_code = 2

    def __init__(self, what: str, repo_id: str, files: list[str] | None = None, hint: str = "",
                 fetch: str | None = None, hub: bool = True) -> None:
        """`repo_id` names a Hugging Face repository; for files published elsewhere give `fetch` (the command that
        gets them) and `repo_id` as a description of the origin (`hub=False`)."""
        self.repo_id = repo_id
        self.files = list(files or [])
        shown = ", ".join(self.files) if self.files else "the repository snapshot"
        self.fetch = fetch = fetch or fetch_command(repo_id, self.files)
        if hub:
            message = (
                f"missing weights for {what}: {shown} from the Hugging Face repository '{repo_id}' is not in the "
                f"local cache and no local path was given.\n  get it on a connected machine with:  {fetch}\n"
                f"  (then copy the Hugging Face cache here), or point molebench at a local copy"
            )
        else:
            message = (f"missing weights for {what}: {shown} ({repo_id}) is not on this machine.\n"
                       f"  get it on a connected machine with:  {fetch}\n  then copy the file here, or point molebench "
                       f"at a local copy")
        if hint:
            message += f": {hint}"
        super().__init__(message)


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
        message = (f"missing weights for {what}: {', '.join(self.files)} is not on this machine. It is not on the "
                   f"Hugging Face hub; its authors publish it via {origin}.")
        if hint:
            message += f"\n  {hint}"
        MolebenchError.__init__(self, message)
