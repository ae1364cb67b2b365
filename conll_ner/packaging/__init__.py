"""What an installable pipeline ships besides its weights: the model card."""
