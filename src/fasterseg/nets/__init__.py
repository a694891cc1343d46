"""Derived networks: built from a Genotype; derive.py turns architecture parameters into one."""
