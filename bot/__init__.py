"""Assistant for the Éducation nationale online professional elections."""
