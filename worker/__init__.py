"""Celery workers: thin tasks that call the domain services in app/."""
