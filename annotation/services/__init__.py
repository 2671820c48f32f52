"""Writes that touch several models. Keyword-only, typed, named <entity>_<action>."""
