"""The sandbox's inside (standard library only, relative imports only).

These modules run in the sandboxed interpreter: the parent copies this package into the
run's temporary directory and imports it there. :mod:`.codec` is also imported by the
parent, which decodes what the child sends with it.
"""
