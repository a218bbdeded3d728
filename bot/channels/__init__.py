"""Messaging channels the gateway serves itself (webhooks in, the platform's API out)."""
