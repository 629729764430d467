"""Cluster DNS: the zone index (index.py, fragment.py), the pure resolver
(resolver.py), the indexer that keeps the index current (watch.py), and the server."""
