"""Faster predictions on CPUs; travels inside packaged pipelines."""
