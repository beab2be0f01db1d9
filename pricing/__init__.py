"""pricing-as-code: a declarative pricing compiler."""

from pricing.api import analyse, check, load
from pricing.compiler.link import Project
from pricing.diagnostics import Diagnostic, PricingError, Severity, Span
from pricing.engine.plan import Plan, compile
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
