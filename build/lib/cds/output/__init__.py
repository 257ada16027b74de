"""Presenting results: wording shared by the console, the card and the app."""
