"""Generation: a registered model samples responses and they become a project's items."""
