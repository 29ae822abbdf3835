"""The settings: one table of every setting (``table``), and how a value is read with its
precedence (``config``).
"""
