"""The relay: what it lets in, and the client's message less a few headers."""
