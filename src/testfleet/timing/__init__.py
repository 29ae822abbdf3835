"""The timing report: the recorder in each pytest process, one record per test, the report's
format, its readers and the closing line.
"""
