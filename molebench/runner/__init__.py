"""The runner: plan work items, generate missing images, score unscored ones, summarise — resumable at every step.

Kept import-light (no torch at package import) so CLI commands that never generate start fast.
"""
