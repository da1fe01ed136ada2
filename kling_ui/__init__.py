"""kling-ui: a web front end for Kling v2.6 Pro image-to-video on the AIML API."""
