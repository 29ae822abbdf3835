"""CI matrices: duration-balanced shards of a suite, the collection-time selection, and the combine
of shard reports into one run.
"""
