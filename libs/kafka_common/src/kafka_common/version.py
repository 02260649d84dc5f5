"""The library's version: its package metadata reads it from here (pyproject: dynamic version)."""

VERSION = "0.1.0"
