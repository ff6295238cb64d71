"""Perception: turning signals (HTTP bodies, webhook deliveries, files) into valid events."""
