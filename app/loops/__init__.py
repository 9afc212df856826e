"""Closed loops: a policy samples, its samples are routed and labelled, the reward model and the
policy retrain, and each iteration is evaluated (issue 12)."""
