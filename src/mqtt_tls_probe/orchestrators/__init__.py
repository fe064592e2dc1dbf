"""Orchestrators: one per command, running adapters and the core into one typed report.

Rule: an orchestrator returns a report; expected failures are data in it
(``ErrorInfo``), and only bugs escape.
"""
