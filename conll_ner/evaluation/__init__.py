"""Scoring as conlleval and seqeval do, and the evaluate step's metrics files."""
