"""LLM judges: configuration, prompt templates, runs as jobs, parsing per kind, metrics."""
