"""Invoice documents through Jinja (`pricing.render.documents`, which imports Jinja and Babel:
a fifth of the package's import time, so the commands that render nothing do not import it)."""

from collections.abc import Collection
from pathlib import Path

from pricing.files import OutputError

FORMATS = ("html", "pdf", "md", "txt")  # document formats; a PDF is made from the HTML


def document_name(invoice_id: str, fmt: str) -> str:
    """The file name of an invoice's document: its id, with `/` and `\\` (which an id may hold:
    a contract `team/acme`) percent-encoded, so that the file is in its format's folder."""
    safe = invoice_id.replace("%", "%25").replace("/", "%2F").replace("\\", "%5C")
    return f"{safe}.{fmt}"


def document_folders(out: Path) -> list[str]:
    """The formats whose folder `out` holds: where documents of an earlier run may be."""
    return [fmt for fmt in FORMATS if (out / fmt).is_dir()]


def remove_earlier(
    out: Path, earlier: Collection[str], ids: Collection[str], rendered: Collection[str]
) -> int:
    """Remove from `out/<format>/` the documents of the invoices that the folder's earlier run
    named (`earlier`), but those this run wrote: its invoices' (`ids`) in the formats it
    `rendered`. Only those: other files are left. A run folder then holds one run's documents,
    and none is sent twice. Returns how many were removed."""
    removed = 0
    for fmt in document_folders(out):  # (a stat per invoice and format: 1.5 s for 50,000)
        for invoice_id in earlier:
            path = out / fmt / document_name(invoice_id, fmt)
            if not (fmt in rendered and invoice_id in ids) and path.is_file():
                try:
                    path.unlink()
                except OSError as exc:
                    raise OutputError(f"could not remove {path}: {exc.strerror or exc}") from exc
                removed += 1
    return removed
