"""Providers that write strategy code: Gemini, and the built-in template provider."""
