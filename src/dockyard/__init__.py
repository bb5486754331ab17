"""dockyard: from `git push` to production on Docker."""

__version__ = "0.1.0"
