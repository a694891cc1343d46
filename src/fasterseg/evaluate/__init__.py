"""Scoring: the confusion matrix every metric derives from, and the Cityscapes report."""
