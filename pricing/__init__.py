"""pricing-as-code: a declarative pricing compiler."""

from typing import TYPE_CHECKING, Any

from pricing.api import analyse, check, load
from pricing.compiler.link import Project
from pricing.diagnostics import Diagnostic, PricingError, Severity, Span
from pricing.engine.plan import Plan, compile

if TYPE_CHECKING:
    from pricing.render.documents import RenderError, render

__all__ = [
    "Diagnostic",
    "Plan",
    "PricingError",
    "Project",
    "RenderError",
    "Severity",
    "Span",
    "analyse",
    "check",
    "compile",
    "load",
    "render",
]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    """`render` and `RenderError` are imported when first used: Jinja and Babel take a fifth of
    the import time of the package, and invoicing or checking does not need them."""
    if name in ("render", "RenderError"):
        from pricing.render import documents

        return getattr(documents, name)
    raise AttributeError(f"module 'pricing' has no attribute {name!r}")
