"""Invoice documents through Jinja (`pricing.render.documents`, which imports Jinja and Babel:
a fifth of the package's import time, so the commands that render nothing do not import it)."""

FORMATS = ("html", "pdf", "md", "txt")  # document formats; a PDF is made from the HTML
