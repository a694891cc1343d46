"""Training derived networks from scratch, with distillation from a frozen teacher."""
