"""pricing-as-code: a declarative pricing compiler."""

from pricing.api import analyse, check, load
from pricing.compiler.link import Project
from pricing.diagnostics import Diagnostic, PricingError, Severity, Span

__all__ = ["Diagnostic", "PricingError", "Project", "Severity", "Span", "analyse", "check", "load"]
__version__ = "0.1.0"
