"""Simulated worlds (items with a hidden truth) and simulated annotators that label them."""
