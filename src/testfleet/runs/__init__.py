"""The pytest runs testfleet starts: the one command-line builder, the phases of ``testfleet run``,
randomized runs and coverage measurement.
"""
