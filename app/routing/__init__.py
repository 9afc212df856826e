"""Routing: per item, humans, AI judges or both label it, under an admin policy and budget."""
