"""Learned routing: prompt features, domain inference, prompt-level quality, the feedback seam.

The default domain model ships in `data/` (`gateway.learning.default_domains`); policies'
`domain_examples` extend it.

The request path calls `RouterModel.estimate` once per request and `FeedbackProcessor.remember`
after serving; `POST /v1/feedback` calls `FeedbackProcessor.apply`. See docs/evaluation.md.
"""

from gateway.learning.domain import DomainClassifier
from gateway.learning.domain_names import header_domain, known_domains
from gateway.learning.features import DEFAULT_BITS, FeatureHasher, SparseFeatures, messages_text
from gateway.learning.feedback import FeedbackProcessor, Remembered
from gateway.learning.quality import PromptQualityModel
from gateway.learning.router_model import QUALITY_MODES, RouterModel, RoutingEstimate

__all__ = [
    "DEFAULT_BITS",
    "QUALITY_MODES",
    "DomainClassifier",
    "FeatureHasher",
    "FeedbackProcessor",
    "PromptQualityModel",
    "Remembered",
    "RouterModel",
    "RoutingEstimate",
    "SparseFeatures",
    "header_domain",
    "known_domains",
    "messages_text",
]
