"""Training runs as a platform domain: the runs table, its API and pages, and the job that trains.

A subpackage so that the library's modules (`app.training.run`, `config`, ...) keep their names.
"""
