"""costwatch client: send one usage event per LLM call (no Django needed)."""

__version__ = "0.1.0"
