"""Learned routing: prompt features, domain inference, prompt-level quality, the feedback seam.

The request path calls `RouterModel.estimate` once per request and `FeedbackProcessor.remember`
after serving; `POST /v1/feedback` calls `FeedbackProcessor.apply`. See docs/evaluation.md.
"""

from gateway.learning.domain import DomainClassifier
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
    "messages_text",
]
