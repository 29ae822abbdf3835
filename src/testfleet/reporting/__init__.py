"""What ``testfleet report`` shows of a timing report: the analysis, text and markdown, the
schedule section and the HTML page.
"""
