"""One check module per lab: ``labNN.py`` registers that lab's exercises with ``aisys.labkit.register``.

Modules here are imported (all of them, once) the first time an exercise is looked up. Keep them light:
name references and bad variants as ``"module:attr"`` strings so nothing heavy loads at registration.
Modules whose name starts with ``_`` are skipped (private helpers).
"""
