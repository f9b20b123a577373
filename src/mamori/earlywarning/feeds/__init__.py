"""Readers for the early-warning feeds (issue 11 §2): network observation reports in
Shadowserver's CSV shape (``network``), FIRST's daily EPSS scores (``epss``) and where a feed is
read from — a file, a directory or an http(s) URL (``sources``). Models, tasks and the CLI are
built on them elsewhere; nothing in this package touches the database.
"""
