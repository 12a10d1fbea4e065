"""Error types with the exit code the CLI gives for each.

One place decides exit codes so every command reports failures the same way: 1 for bad input or a failed check,
2 for usage errors (an option value that can never work), missing weights or runs that cannot be compared (the user
must fix the command, fetch or choose something first).
"""

from __future__ import annotations

from molebench.assets.fetch import fetch_command


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
