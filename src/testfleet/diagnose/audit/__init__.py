"""The static isolation audit: rules that read a suite's source for what breaks under xdist or in
another order.
"""
