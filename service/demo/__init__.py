"""The demo models served when no config is given: a synthetic shapes data set and its training script."""
