"""What each chapter of the book runs, one module per paper: its settings dataclass (presets per scale), the
paper's claims (declared once, beside the numbers in :mod:`rattrlib.published`), and the library calls that turn
trained models into the chapter's measurements, tables and verdicts. Notebooks call these; they define nothing.
"""
