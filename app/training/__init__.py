"""Training library: reward models and policies from export snapshots, run inside a job.

Nothing here imports torch, transformers, TRL or datasets at module level: the web process may
import `app.training.config` to validate a run's config, and only worker-side functions load the
heavy libraries.
"""
