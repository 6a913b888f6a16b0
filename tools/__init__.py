"""Build-time tools of the documentation site (not part of the installed package)."""
