"""Fixers: rules attach one to a finding; the engine applies it, re-parses and re-lints.

Each fixer builds a new module from the old one and never edits text: formatting and comments
outside the rewritten statements stay byte for byte.
"""
