"""The dashboard: static files served at /ui (service/api/ui.py), and the script that writes its colormaps."""
