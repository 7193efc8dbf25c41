"""Packaged data files: the seed's code tables as CSV."""
