"""Optimisation shared by target training and decomposition: the loop and its schedules."""
