"""Training: budgets in epochs, schedules, encoders, the training loggers and guard, distillation data, the GPU check."""
