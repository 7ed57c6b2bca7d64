"""Per-module facts the rules query, computed from one traversal of the tree."""
