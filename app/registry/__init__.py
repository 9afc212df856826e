"""The model registry: versions of base models, reward models and policies, with lineage."""
