"""Plumbing every stage shares: atomic file writes, and who is running (run id, worker id and
count).
"""
