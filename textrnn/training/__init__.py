"""Training: the trainer, one task per module behind the Task protocol, optimizer, reporting, run folders,
the pretraining stage, evaluation and metrics. Imports core, data and models."""
