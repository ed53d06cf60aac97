"""The pure core: decisions only, stdlib only, time and randomness passed in."""
