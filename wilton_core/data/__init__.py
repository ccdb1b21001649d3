"""Shipped data: the difficulty model (difficulty.npz) and the labelled intent set."""
