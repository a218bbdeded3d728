"""The support desk: handoffs to human agents, their console, the copilot and the insights."""
