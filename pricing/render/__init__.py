"""Invoice documents through Jinja (`pricing.render.documents`, which imports Jinja and Babel:
a fifth of the package's import time, so the commands that render nothing do not import it)."""

FORMATS = ("html", "pdf", "md", "txt")  # document formats; a PDF is made from the HTML


def document_name(invoice_id: str, fmt: str) -> str:
    """The file name of an invoice's document: its id, with `/` and `\\` (which an id may hold:
    a contract `team/acme`) percent-encoded, so that the file is in its format's folder."""
    safe = invoice_id.replace("%", "%25").replace("/", "%2F").replace("\\", "%5C")
    return f"{safe}.{fmt}"
