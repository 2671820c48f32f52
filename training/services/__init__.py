"""Writes for the training app: the model registry, training runs, and their execution."""
