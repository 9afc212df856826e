"""Tandem: collect human and AI feedback for aligning language models."""

__version__ = "0.1.0"
