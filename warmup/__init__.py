"""warmup: an outbound SMTP relay that warms up new sending IPs safely."""

from warmup.core.errors import (
    ConfigError,
    ConfigIssue,
    InputError,
    StoreError,
    TemplateError,
    WarmupError,
)

__all__ = [
    "ConfigError",
    "ConfigIssue",
    "InputError",
    "StoreError",
    "TemplateError",
    "WarmupError",
    "__version__",
]

__version__ = "0.1.0"
