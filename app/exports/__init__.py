"""Exports: preference datasets for training libraries, streamed or as frozen snapshots."""
