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
from gateway.learning.lengths import OutputLengths
from gateway.learning.neighbours import PromptIndex
from gateway.learning.planner import TargetPlanner, parse_target
from gateway.learning.quality import PromptQualityModel
from gateway.learning.router_model import QUALITY_MODES, RouterModel, RoutingEstimate
from gateway.learning.target import CalibrationTable, QualityTarget, TargetMonitor

__all__ = [
    "DEFAULT_BITS",
    "QUALITY_MODES",
    "CalibrationTable",
    "DomainClassifier",
    "FeatureHasher",
    "FeedbackProcessor",
    "OutputLengths",
    "PromptIndex",
    "PromptQualityModel",
    "QualityTarget",
    "Remembered",
    "RouterModel",
    "RoutingEstimate",
    "SparseFeatures",
    "TargetMonitor",
    "TargetPlanner",
    "header_domain",
    "known_domains",
    "messages_text",
    "parse_target",
]
