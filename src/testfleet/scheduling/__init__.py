"""Which test runs where and when: past durations, units of work, the longest-first placement,
testfleet's xdist scheduler and the worker count.
"""
