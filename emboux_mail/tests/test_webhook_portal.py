"""Lifecycle webhooks."""
