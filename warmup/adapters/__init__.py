"""One module per third-party I/O library, translating to and from core types."""
