"""Training and evaluation: metrics, the trainer, checkpoints."""
