"""Prompt sets: named, immutable lists of prompts that generation samples from."""
