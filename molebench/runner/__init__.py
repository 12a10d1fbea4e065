"""The runner: plan work items, generate missing images, score unscored ones, summarise — resumable at every step.

Commands (one per CLI command that writes a run folder; each opens the folder, works, and closes it through
`lifecycle`):

    run_command.py     `molebench run`: prompts -> generate -> score -> summary
    score_command.py   `molebench score RUN`: score a folder's images as a stage of its own
    repair_command.py  `molebench verify --repair RUN`: fix what verify found, then the run's own command

Steps (what the commands are made of):

    plan_step.py       the work items of a prompt set x seeds (content keys, per-image generator seeds)
    generate_step.py   make the images a folder lacks, in batches, on one process's share
    score_step.py      score the images a folder lacks scores for, per scorer, in shards
    set_score_step.py  set-level metrics (FID, KID) over the folder's images and their references

Support: `lifecycle` (open, close, interrupted), `config` (RunConfig), `protocol` (the paper's repeats), `distributed`
(several processes), `environment` (device, versions, time), `preflight` (missing weights before heavy imports).
Kept import-light (no torch at package import) so CLI commands that never generate start fast.
"""
