"""Test helpers for the AI on the Ball provider: an offline, HTTP-level simulator of the AIB v1 API."""
