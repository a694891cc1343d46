"""Datasets, label tables and paired transforms."""
