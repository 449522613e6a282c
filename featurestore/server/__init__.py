"""Processes above the user facades: the HTTP feature server (``featurestore serve``)."""
