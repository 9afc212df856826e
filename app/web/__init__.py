"""Shared plumbing of the HTML pages: templates, CSP nonces, page auth, Markdown, static files."""
