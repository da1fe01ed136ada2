"""kling-ui: a web front end for Kling v2.6 Pro image-to-video on the AIML API."""

__version__ = "0.1.0"  # pyproject.toml's; every MP4 the app saves carries it (provenance)
