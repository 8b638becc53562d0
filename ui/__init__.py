"""Poster Studio's Gradio UI (not part of the library): one module per tab, each `build(services, files)` laying
out its tab and wiring its events to the poster_studio services; common.py holds what the tabs share."""
