"""Reading the CoNLL files as distributed and turning them into spaCy's training data."""
