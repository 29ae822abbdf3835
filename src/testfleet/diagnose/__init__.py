"""Diagnosis of suites that are not safe in parallel or in random order.

It never changes the suite it diagnoses: it reads it, and runs it in subprocesses.
"""
