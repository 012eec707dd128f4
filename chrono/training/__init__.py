"""Training support: the run state in checkpoints, the reference optimiser, runtime set-up, validation."""
